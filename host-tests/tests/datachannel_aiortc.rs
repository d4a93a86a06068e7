//! Interop with aiortc (PyPI) on 127.0.0.1: being written by the aiortc interop work; see host-tests/py/.

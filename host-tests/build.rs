//! Builds the libsrtp2 oracle (`c/srtp_shim.c`) when libsrtp2 is installed
//! (found with pkg-config) and sets `cfg(have_libsrtp)`. Without libsrtp2 the
//! rest of host-tests still builds; the interop test then fails under `CI`
//! and skips otherwise.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(have_libsrtp)");
    println!("cargo::rerun-if-changed=c/srtp_shim.c");
    for var in ["PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR"] {
        println!("cargo::rerun-if-env-changed={var}");
    }

    let lib = match pkg_config::Config::new().atleast_version("2.0").cargo_metadata(false).probe("libsrtp2") {
        Ok(lib) => lib,
        Err(e) => {
            println!("cargo::warning=libsrtp2 not found with pkg-config ({e}); libsrtp interop disabled");
            return;
        }
    };
    let mut build = cc::Build::new();
    build.file("c/srtp_shim.c").warnings(true);
    for dir in &lib.include_paths {
        build.include(dir);
    }
    match build.try_compile("tinyrtc_srtp_shim") {
        Ok(()) => {
            // The shim first, then libsrtp2 itself, so the linker resolves in order.
            for dir in &lib.link_paths {
                println!("cargo::rustc-link-search=native={}", dir.display());
            }
            for l in &lib.libs {
                println!("cargo::rustc-link-lib={l}");
            }
            println!("cargo::rustc-cfg=have_libsrtp");
        }
        Err(e) => println!("cargo::warning=could not build the libsrtp2 shim ({e}); libsrtp interop disabled"),
    }
}

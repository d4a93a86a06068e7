// Captures real Chromium SDP and trickle candidates as test fixtures:
//   node capture-sdp.mjs <out dir>
// Writes chromium-offer-av-dc.sdp (video+audio+data channel offer, all
// candidates gathered), chromium-answer-av-dc.sdp (a second peer connection's
// answer to it), chromium-offer-recvonly.sdp and chromium-candidates.jsonl
// (RTCIceCandidate.toJSON() lines, the last one being the end marker null).
import fs from 'node:fs';
import path from 'node:path';
import { openPage } from './harness.mjs';

const out = process.argv[2] || '.';
const candidates = [];
const a = await openPage((ev) => {
  if (ev.event === 'candidate') candidates.push(ev.candidate);
});
const b = await openPage(() => {});
try {
  const offer = await a.call('offer', [{ video: 'sendrecv', audio: 'sendrecv', datachannel: 'chat', gather: true }]);
  fs.writeFileSync(path.join(out, 'chromium-offer-av-dc.sdp'), offer);
  const answer = await b.call('answer', [offer, { video: true, audio: true, gather: true }]);
  fs.writeFileSync(path.join(out, 'chromium-answer-av-dc.sdp'), answer);
  fs.writeFileSync(
    path.join(out, 'chromium-candidates.jsonl'),
    candidates.map((c) => JSON.stringify(c)).join('\n') + '\n',
  );
  const c = await openPage(() => {});
  const recv = await c.call('offer', [{ video: 'recvonly', audio: 'recvonly', datachannel: null, gather: false }]);
  fs.writeFileSync(path.join(out, 'chromium-offer-recvonly.sdp'), recv);
  await c.close();
} finally {
  await a.close();
  await b.close();
}
console.log('captured', candidates.length, 'candidates');

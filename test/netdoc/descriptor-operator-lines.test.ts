/**
 * The descriptor's optional operator lines (docs/protocol.md §8.2): contact,
 * family and hibernating round-trip under the self-signature, in their order,
 * at most once each; bad forms are refused; a descriptor without them is
 * unchanged.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hex, utf8 } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import { encodeDescriptor, parseDescriptor } from '../../src/netdoc/descriptor.js';
import { b64 } from '../../src/netdoc/text.js';
import { makeDescriptor, relayKeys } from './helpers.js';

const keys = relayKeys(1);
const other = relayKeys(2);
const third = relayKeys(3);

describe('descriptor operator lines', () => {
  it('contact, family and hibernating round-trip', () => {
    const d = makeDescriptor(keys, { contact: 'ops at example dot org <0xDEADBEEF>', family: [other.identity, third.identity], hibernating: true });
    const text = encodeDescriptor(d, keys.signer);
    assert.match(text, new RegExp(`^reject \\*:\\*\\ncontact ops at example dot org <0xDEADBEEF>\\nfamily ${hex(other.identity)} ${hex(third.identity)}\\nhibernating 1\\nsignature `, 'm'));
    const back = parseDescriptor(text).descriptor;
    assert.equal(back.contact, d.contact);
    assert.deepEqual(back.family?.map(hex), [hex(other.identity), hex(third.identity)]);
    assert.equal(back.hibernating, true);
  });

  it('before the exit policy they are unknown lines, skipped (§8.1)', () => {
    const good = encodeDescriptor(makeDescriptor(keys), keys.signer);
    const body = good.slice(0, good.indexOf('signature ')).replace('nickname relay1\n', 'nickname relay1\ncontact early\nhibernating 1\n');
    const back = parseDescriptor(signBody(body)).descriptor;
    assert.equal(back.contact, undefined);
    assert.equal(back.hibernating, undefined);
  });

  it('a descriptor without them has none of the lines and parses without the fields', () => {
    const text = encodeDescriptor(makeDescriptor(keys), keys.signer);
    assert.doesNotMatch(text, /^(contact|family|hibernating) /m);
    const back = parseDescriptor(text).descriptor;
    assert.equal('contact' in back, false);
    assert.equal('family' in back, false);
    assert.equal('hibernating' in back, false);
  });

  it('refuses bad values when encoding', () => {
    for (const over of [
      { contact: '' },
      { contact: ' padded' },
      { contact: 'two  spaces' },
      { contact: 'x'.repeat(201) },
      { contact: 'tab\there' },
      { family: [keys.identity] },
      { family: [other.identity, other.identity] },
      { family: [new Uint8Array(31)] },
      { family: Array.from({ length: 33 }, (_, i) => relayKeys(10 + i).identity) },
    ]) {
      assert.throws(() => encodeDescriptor(makeDescriptor(keys, over), keys.signer), /contact|family/, JSON.stringify(Object.keys(over)));
    }
  });

  it('refuses the lines out of order, twice, or malformed when parsing (signature valid)', () => {
    const good = encodeDescriptor(makeDescriptor(keys, { contact: 'me', family: [other.identity], hibernating: true }), keys.signer);
    const body = good.slice(0, good.indexOf('signature '));
    const variants: [string, RegExp][] = [
      [body.replace(/contact me\n(family [0-9a-f]+\n)/, '$1contact me\n'), /out of order or repeated/],
      [body.replace('contact me\n', 'contact me\ncontact me\n'), /out of order or repeated/],
      [body.replace(/family [0-9a-f]+/, `family ${hex(other.identity).toUpperCase()}`), /64 lowercase hex/],
      [body.replace(/family [0-9a-f]+/, `family ${hex(keys.identity)}`), /itself/],
      [body.replace('hibernating 1', 'hibernating yes'), /0 or 1/],
    ];
    for (const [edited, error] of variants) {
      const signed = signBody(edited);
      assert.throws(() => parseDescriptor(signed), error, edited.slice(-200));
    }
  });
});

/** Sign an edited body with the test relay's key, as a relay would, so only the grammar can refuse it. */
function signBody(body: string): string {
  return `${body}signature ${b64(crypto.ed25519Sign(keys.signer.signingSeed, utf8(body)))}\n`;
}

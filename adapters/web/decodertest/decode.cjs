'use strict'
// Reads a JSON array of BOLT11 invoices from the file named on the command
// line and prints, as JSON, what bitcoinjs' bolt11 decoder (an independent
// implementation: it checks the bech32 checksum and recovers the payee key
// from the signature) finds in each. app/blindeddecode_test.go compares
// that with what lnmux put in (docs/blinded.md, "Readers other than lnd").
//
// bolt11 does not know tagged field 20 (blinded payment paths, an lnd
// extension): it keeps such fields as unknown tags with their 5-bit words,
// which this script regroups into bytes so that the test can compare them
// with the paths lnmux encoded.

const fs = require('node:fs')
const bolt11 = require('bolt11')

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l'

// bolt11 hands an unknown field's words back bech32-encoded under the
// prefix "unknown": strip prefix and checksum, then regroup 5-bit words into
// bytes, refusing non-zero padding.
function unknownFieldBytes (encoded) {
  const sep = encoded.lastIndexOf('1')
  const chars = encoded.slice(sep + 1, encoded.length - 6)
  let acc = 0
  let bits = 0
  const out = []
  for (const c of chars) {
    const v = CHARSET.indexOf(c)
    if (v < 0) throw new Error(`not a bech32 character: ${c}`)
    acc = (acc << 5) | v
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out.push((acc >> bits) & 0xff)
      acc &= (1 << bits) - 1
    }
  }
  if (acc !== 0) throw new Error('non-zero padding in an unknown field')
  return Buffer.from(out).toString('hex')
}

// The feature bits bolt11 decoded, as bit numbers: its named features in
// order (required = 2i, supported = 2i + 1), then the bits it has no name
// for.
function featureBits (fb) {
  const bits = []
  let i = 0
  for (const [name, v] of Object.entries(fb)) {
    if (name === 'word_length' || name === 'extra_bits') continue
    if (v.required) bits.push(2 * i)
    if (v.supported) bits.push(2 * i + 1)
    i++
  }
  const extra = fb.extra_bits || { start_bit: 0, bits: [] }
  extra.bits.forEach((set, j) => { if (set) bits.push(extra.start_bit + j) })
  return bits.sort((a, b) => a - b)
}

function describe (invoice) {
  const d = bolt11.decode(invoice)
  const out = {
    network: d.network.bech32,
    millisatoshis: d.millisatoshis,
    timestamp: d.timestamp,
    payeeNodeKey: d.payeeNodeKey,
    tags: d.tags.map(t => t.tagName),
    blindedPaths: []
  }
  for (const t of d.tags) {
    switch (t.tagName) {
      case 'payment_hash': out.paymentHash = t.data; break
      case 'description': out.description = t.data; break
      case 'purpose_commit_hash': out.descriptionHash = t.data; break
      case 'expire_time': out.expiry = t.data; break
      case 'payment_secret': out.paymentSecret = t.data; break
      case 'min_final_cltv_expiry': out.minFinalCltv = t.data; break
      case 'feature_bits': out.features = featureBits(t.data); break
      case 'unknownTag':
        if (t.data.tagCode === 20) out.blindedPaths.push(unknownFieldBytes(t.data.words))
        break
    }
  }
  return out
}

const invoices = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const results = invoices.map(inv => {
  try {
    return describe(inv)
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) }
  }
})
process.stdout.write(JSON.stringify(results))

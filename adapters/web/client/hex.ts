/** toHex encodes bytes as lowercase hex (hashes, set ids, public keys). */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** fromHex decodes hex; it throws on an odd length or a non-hex digit. */
export function fromHex(s: string): Uint8Array {
  const t = s.trim();
  if (t.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(t)) {
    throw new Error("not a hex string");
  }
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** formatMsat shows an amount in sat, with msat decimals only when needed. */
export function formatMsat(msat: bigint): string {
  const sat = msat / 1000n;
  const rest = msat % 1000n;
  const whole = sat.toLocaleString("en-US");
  return rest === 0n ? `${whole} sat` : `${whole}.${rest.toString().padStart(3, "0").replace(/0+$/, "")} sat`;
}

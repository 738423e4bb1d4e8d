// Tests of the TypeScript client against a real lnmuxd, run by the Go
// end-to-end suite (app/e2e, TestConsoleAndTraces) with LNMUX_URL set:
//   LNMUX_URL=http://127.0.0.1:9190 npm test
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createLnmuxClient,
  createLnmuxTransport,
  describeError,
  followInvoiceEvents,
  fromHex,
  LookupInvoiceResponse_LookupState,
  SubscribeInvoiceEventsResponse_EventType,
  toHex,
  type Protocol,
} from "../index.js";

const baseUrl = process.env.LNMUX_URL;
if (!baseUrl) {
  throw new Error("set LNMUX_URL to a running lnmuxd (the Go e2e suite does)");
}

const protocols: Protocol[] = ["connect", "connect-json", "grpc-web"];

for (const protocol of protocols) {
  test(`${protocol}: GetInfo, AddInvoice, ListInvoices`, async () => {
    const client = createLnmuxClient({ baseUrl, protocol });
    const info = await client.getInfo({});
    assert.equal(info.pubKey.length, 33);
    assert.equal(info.network, "regtest");
    assert.ok(info.nodes.length >= 1, "lnmuxd has nodes");

    const inv = await client.addInvoice({ amtMsat: 21_000n, description: "ts client", expirySecs: 600n });
    assert.match(inv.paymentRequest, /^lnbcrt210n1/);
    assert.equal(inv.hash.length, 32);
    assert.ok(inv.expiresAt > BigInt(Math.floor(Date.now() / 1000)));

    const page = await client.listInvoices({ maxInvoicesCount: 5n });
    assert.ok(page.invoice.length <= 5);
  });
}

test("an invalid field is InvalidArgument naming it", async () => {
  const client = createLnmuxClient({ baseUrl });
  await assert.rejects(client.addInvoice({ amtMsat: -1n, expirySecs: 60n }), (err: unknown) => {
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, Code.InvalidArgument);
    assert.deepEqual(describeError(err), { field: "amt_msat", message: "must not be negative", code: "invalid_argument" });
    return true;
  });
  await assert.rejects(client.settleInvoice({ hash: fromHex("abcd"), setId: new Uint8Array(32) }), (err: unknown) => {
    assert.equal(describeError(err).field, "hash");
    return true;
  });
  // A permanent cancel needs no set id, but one given must be well formed.
  await assert.rejects(client.cancelInvoice({ hash: new Uint8Array(32), setId: fromHex("abcd"), permanent: true }), (err: unknown) => {
    assert.equal(describeError(err).field, "set_id");
    return true;
  });
});

test("the macaroon hook sets the header on every call", async () => {
  // A real macaroon of the lnmuxd under test: a present but wrong one is
  // refused even where macaroons are optional.
  const mac = process.env.LNMUX_MACAROON ?? "";
  assert.ok(mac, "LNMUX_MACAROON (hex of readonly.macaroon) must be set");
  const seen: (string | null)[] = [];
  let calls = 0;
  const transport = createLnmuxTransport({
    baseUrl,
    macaroon: () => (calls++, mac),
    interceptors: [
      (next) => async (req) => {
        seen.push(req.header.get("macaroon"));
        return next(req);
      },
    ],
  });
  const client = createLnmuxClient(transport);
  await client.getInfo({});
  await client.getInfo({});
  assert.deepEqual(seen, [mac, mac]);
  assert.equal(calls, 2);

  const bearer: (string | null)[] = [];
  const b = createLnmuxClient(
    createLnmuxTransport({
      baseUrl,
      macaroon: mac,
      macaroonHeader: "bearer",
      interceptors: [(next) => async (req) => (bearer.push(req.header.get("authorization")), next(req))],
    }),
  );
  await b.getInfo({});
  assert.deepEqual(bearer, [`Bearer ${mac}`]);

  const wrong = createLnmuxClient(createLnmuxTransport({ baseUrl, macaroon: "0201ff" }));
  await assert.rejects(wrong.getInfo({}), (err: unknown) => ConnectError.from(err).code === Code.Unauthenticated);
});

test("SubscribeSingleInvoice streams until aborted", async () => {
  const client = createLnmuxClient({ baseUrl });
  const inv = await client.addInvoice({ amtMsat: 1000n, expirySecs: 60n });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 500);
  const got: number[] = [];
  try {
    for await (const u of client.subscribeSingleInvoice({ hash: inv.hash }, { signal: ac.signal })) {
      got.push(u.state);
    }
  } catch (err) {
    assert.equal(ConnectError.from(err).code, Code.Canceled);
  }
  assert.deepEqual(got, [], "an unpaid invoice has no step yet");
});

test("a swap invoice has the caller's hash and no preimage; a wrong preimage is refused naming it", async () => {
  const client = createLnmuxClient({ baseUrl });
  const preimage = crypto.getRandomValues(new Uint8Array(32));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", preimage));
  const inv = await client.addInvoice({ amtMsat: 1_000n, expirySecs: 600n, paymentHash: hash, acceptTimeoutSecs: 3600n });
  assert.equal(toHex(inv.hash), toHex(hash));
  assert.equal(inv.preimage.length, 0, "lnmux does not know a swap's preimage");
  // Checked before anything else: sha256(preimage) must be the hash.
  await assert.rejects(
    client.settleInvoice({ hash, setId: new Uint8Array(32), preimage: new Uint8Array(32).fill(7) }),
    (err: unknown) => {
      assert.equal(ConnectError.from(err).code, Code.InvalidArgument);
      assert.equal(describeError(err).field, "preimage");
      return true;
    },
  );
  await assert.rejects(client.addInvoice({ amtMsat: 1_000n, expirySecs: 600n, acceptTimeoutSecs: 65_536n }), (err: unknown) => {
    assert.equal(describeError(err).field, "accept_timeout_secs");
    return true;
  });
});

test("hex helpers", () => {
  assert.equal(toHex(fromHex("00ff10")), "00ff10");
  assert.throws(() => fromHex("abc"));
});

test("LookupInvoice of a new invoice is open or unknown; the event log replays from a cursor", async () => {
  const client = createLnmuxClient({ baseUrl });
  const inv = await client.addInvoice({ amtMsat: 1_000n, expirySecs: 600n });
  const l = await client.lookupInvoice({ hash: inv.hash });
  assert.equal(l.state, LookupInvoiceResponse_LookupState.OPEN_OR_UNKNOWN);
  assert.equal(toHex(l.hash), toHex(inv.hash));

  // The suite settled invoices before: the log holds at least one stored
  // event, and a resubscription from its sequence continues after it.
  const abort = new AbortController();
  let first: bigint | undefined;
  for await (const ev of followInvoiceEvents(client, { from: 0n, signal: abort.signal })) {
    if (ev.type === SubscribeInvoiceEventsResponse_EventType.ACCEPTED) continue;
    assert.ok(ev.sequence > 0n);
    first = ev.sequence;
    break;
  }
  abort.abort();
  assert.ok(first !== undefined);
  const again = new AbortController();
  for await (const ev of followInvoiceEvents(client, { from: first, signal: again.signal })) {
    if (ev.type === SubscribeInvoiceEventsResponse_EventType.ACCEPTED) continue;
    assert.ok(ev.sequence > first, `event ${ev.sequence} after cursor ${first}`);
    break;
  }
  again.abort();
});

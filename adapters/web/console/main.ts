// The lnmux web console: one page over the TypeScript client (../client).
// It talks only to the lnmuxd that served it (its own origin), so that the
// macaroon kept in the tab never leaves for another server
// (docs/authentication.md, "Who can reach what").
// Query parameters (all optional):
//   protocol=connect|connect-json|grpc-web (default connect, binary)
//   carol=<url>      the regtest dev command's "pay as Carol" helper
//   api=<url>        refused unless it names the page's own origin
import { renderSVG } from "uqr";
import {
  createLnmuxClient,
  describeError,
  followInvoiceEvents,
  formatMsat,
  fromHex,
  toHex,
  InvoiceStatus,
  NodeInfo_HintStatus as HintStatus,
  LookupInvoiceResponse_LookupState as LookupState,
  StoredHtlc_HtlcStatus as HtlcStatus,
  SubscribeInvoiceEventsResponse_EventType as EventType,
  SubscribeSingleInvoiceResponse_InvoiceState as State,
  type HumanError,
  type Invoice,
  type LnmuxClient,
  type Protocol,
} from "../client/index.js";
import type { Interceptor } from "@connectrpc/connect";

const params = new URLSearchParams(location.search);
const protocol = (params.get("protocol") ?? "connect") as Protocol;
const carolURL = params.get("carol");

// sameOrigin reports whether url (absolute or relative to the page) is on
// the page's own origin.
function sameOrigin(url: string): boolean {
  try {
    return new URL(url, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

// The API is the page's own origin. An api= naming another server is
// refused rather than followed: a link could otherwise make this tab send
// its macaroon there.
const apiParam = params.get("api");
const foreignAPI = apiParam !== null && !sameOrigin(apiParam);

const macaroonKey = "lnmux.macaroon";

// ownOriginMacaroon adds the tab's macaroon to calls to the page's own
// origin only, whatever the transport's base URL (a second check of the
// rule above).
const ownOriginMacaroon: Interceptor = (next) => async (req) => {
  const mac = sessionStorage.getItem(macaroonKey);
  if (mac && sameOrigin(req.url)) req.header.set("macaroon", mac);
  return next(req);
};

const client: LnmuxClient = createLnmuxClient({
  baseUrl: location.origin,
  protocol,
  interceptors: [ownOriginMacaroon],
});

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...kids: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
}

function short(hex: string): string {
  return hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-8)}` : hex;
}

function when(unixSecs: bigint): string {
  return unixSecs > 0n ? new Date(Number(unixSecs) * 1000).toLocaleString() : "";
}

function banner(msg: string | undefined): void {
  const b = $("banner");
  b.textContent = msg ?? "";
  b.hidden = !msg;
}

// Settings lnmuxd serves next to the page; absent when the page comes from
// another origin, hence the defaults (lnmuxd's own defaults).
let acceptTimeoutSecs = 60;
async function loadConfig(): Promise<void> {
  try {
    const res = await fetch("./config.json");
    if (res.ok) {
      const cfg = (await res.json()) as { acceptTimeoutSeconds?: number };
      if (cfg.acceptTimeoutSeconds) acceptTimeoutSecs = cfg.acceptTimeoutSeconds;
    }
  } catch {
    // keep the default
  }
}

// ---------------------------------------------------------------------------
// Identity and nodes, refreshed.

// hintText says whether new invoices hint a node (docs/route-hints.md).
const hintText: Partial<Record<HintStatus, string>> = {
  [HintStatus.INCLUDED]: "in new invoices' hints",
  [HintStatus.UNREACHABLE]: "left out of hints: unreachable",
  [HintStatus.NO_INBOUND]: "left out of hints: no inbound",
  [HintStatus.FALLBACK]: "in hints: no node qualifies, all hinted",
};

async function refreshInfo(): Promise<void> {
  try {
    const info = await client.getInfo({});
    $("identity").textContent = `${info.network} · ${short(toHex(info.pubKey))}${info.autoSettle ? " · auto-settle on" : ""}`;
    const list = $("nodes-list");
    list.replaceChildren(
      ...info.nodes.map((n) => {
        const ok = n.connected && n.interceptorActive;
        const li = el("li", { "data-pubkey": toHex(n.pubKey) },
          el("span", { class: ok ? "ok" : "bad" }, ok ? "● " : "○ "),
          el("span", { class: "mono" }, short(toHex(n.pubKey))),
          el("br"),
          el("span", { class: "muted" },
            `${n.connected ? "connected" : "disconnected"} · interceptor ${n.interceptorActive ? "active" : "down"} · height ${n.blockHeight}`),
          el("br"),
          el("span", { class: "muted" },
            `inbound ${n.inboundKnown ? formatMsat(n.inboundMsat) : "unknown"} · ${hintText[n.hintStatus] ?? "hint status unknown"}`),
        );
        if (n.lastError) li.append(el("br"), el("span", { class: "error" }, n.lastError));
        return li;
      }),
    );
    if (info.nodes.length === 0) list.replaceChildren(el("li", { class: "muted" }, "No LND node configured."));
    banner(undefined);
  } catch (err) {
    banner(describeError(err).message);
  }
}

// ---------------------------------------------------------------------------
// Creating an invoice.

const fieldOf: Record<string, string> = {
  amt_msat: "amount",
  description: "description",
  description_hash: "description",
  expiry_secs: "expiry",
};

function clearErrors(): void {
  for (const f of ["amount", "description", "expiry", "form"]) {
    const e = $(`${f}-error`);
    e.hidden = true;
    e.textContent = "";
    if (f !== "form") $(f).removeAttribute("aria-invalid");
  }
}

function showError(e: HumanError): void {
  const f = e.field ? fieldOf[e.field] : undefined;
  const target = $(`${f ?? "form"}-error`);
  target.textContent = f ? e.message : e.field ? `${e.field}: ${e.message}` : e.message;
  target.hidden = false;
  if (f) $(f).setAttribute("aria-invalid", "true");
}

// parseSat reads "1000", "0.5" or "" (any amount) as msat. Other text is
// refused here; ranges are lnmuxd's to check, so that its word is shown.
function parseSat(s: string): bigint | HumanError {
  const t = s.trim().replace(/[_ ,]/g, "");
  if (t === "") return 0n;
  const m = /^(-?)(\d+)(?:\.(\d{1,3}))?$/.exec(t);
  if (!m) return { field: "amt_msat", message: "enter an amount in sat, such as 1000 or 0.5", code: "invalid_argument" };
  const msat = BigInt(m[2]) * 1000n + BigInt((m[3] ?? "").padEnd(3, "0"));
  return m[1] ? -msat : msat;
}

function parseExpiry(s: string): bigint | HumanError {
  const t = s.trim();
  if (!/^-?\d+$/.test(t)) return { field: "expiry_secs", message: "enter a number of seconds, such as 3600", code: "invalid_argument" };
  return BigInt(t);
}

interface Shown {
  hash: string;
  amountMsat: bigint;
  follow: AbortController;
}
let shown: Shown | undefined;
const amounts = new Map<string, bigint>(); // hash → amount of invoices made here

async function createInvoice(ev: Event): Promise<void> {
  ev.preventDefault();
  clearErrors();
  const amt = parseSat($<HTMLInputElement>("amount").value);
  const expiry = parseExpiry($<HTMLInputElement>("expiry").value);
  if (typeof amt !== "bigint") return showError(amt);
  if (typeof expiry !== "bigint") return showError(expiry);
  const button = $<HTMLButtonElement>("create-invoice");
  button.disabled = true;
  try {
    const res = await client.addInvoice({
      amtMsat: amt,
      description: $<HTMLInputElement>("description").value,
      expirySecs: expiry,
      blinded: $<HTMLInputElement>("blinded").checked,
    });
    const hash = toHex(res.hash);
    amounts.set(hash, amt);
    showInvoice(res.paymentRequest, hash, amt, res.expiresAt);
  } catch (err) {
    showError(describeError(err));
  } finally {
    button.disabled = false;
  }
}

const stateText: Record<State, [string, string]> = {
  [State.STATE_ACCEPTED]: ["accepted", "accepted: waiting for Settle or Cancel"],
  [State.STATE_SETTLE_REQUESTED]: ["settle-requested", "settle requested: lnd is settling the parts"],
  [State.STATE_SETTLED]: ["settled", "SETTLED"],
  [State.STATE_FAILED]: ["failed", "FAILED: a part of the payment failed"],
  [State.STATE_CANCELLED]: ["cancelled", "CANCELLED: the payment went back to the payer (the invoice stays payable)"],
  [State.STATE_EXPIRED]: ["expired", "EXPIRED before a decision"],
};

function setStatus(state: string, text: string): void {
  const s = $("invoice-status");
  s.dataset.state = state;
  s.textContent = text;
  $("invoice-steps").append(el("li", {}, `${new Date().toLocaleTimeString()} ${text}`));
}

function showInvoice(payreq: string, hash: string, amountMsat: bigint, expiresAt: bigint): void {
  shown?.follow.abort();
  shown = { hash, amountMsat, follow: new AbortController() };
  $("invoice").hidden = false;
  $("qr").innerHTML = renderSVG(`lightning:${payreq}`.toUpperCase(), { border: 2 });
  $<HTMLAnchorElement>("lightning-link").href = `lightning:${payreq}`;
  $<HTMLTextAreaElement>("payment-request").value = payreq;
  $("invoice-amount").textContent = amountMsat === 0n ? "any amount" : formatMsat(amountMsat);
  $("invoice-hash").textContent = hash;
  $("invoice-expires").textContent = when(expiresAt);
  $("invoice-steps").replaceChildren();
  $("pay-result").textContent = "";
  $("pay-carol").hidden = !carolURL;
  setStatus("waiting", "waiting for payment");
  void follow(shown);
}

// follow streams the invoice's lifecycle (SubscribeSingleInvoice) until it
// is final or another invoice is shown; a broken stream is resumed (the
// first message repeats the current state).
async function follow(s: Shown): Promise<void> {
  for (let attempt = 0; !s.follow.signal.aborted; attempt++) {
    try {
      for await (const u of client.subscribeSingleInvoice({ hash: fromHex(s.hash) }, { signal: s.follow.signal })) {
        const [state, text] = stateText[u.state] ?? ["unknown", `state ${u.state}`];
        const set = u.setId.length ? ` (set ${short(toHex(u.setId))})` : "";
        setStatus(state, text + (u.state === State.STATE_ACCEPTED ? set : ""));
        if (u.state === State.STATE_SETTLED || u.state === State.STATE_FAILED) {
          void loadInvoices();
        }
      }
      return; // final state reached: the server ended the stream
    } catch (err) {
      if (s.follow.signal.aborted) return;
      $("pay-result").textContent = `Live updates interrupted (${describeError(err).message}); retrying…`;
      await sleep(Math.min(1000 * 2 ** attempt, 10_000));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function copyInvoice(): Promise<void> {
  const text = $<HTMLTextAreaElement>("payment-request").value;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (plain http on a non-local host): select for Ctrl-C.
    const ta = $<HTMLTextAreaElement>("payment-request");
    ta.select();
    document.execCommand("copy");
  }
  $("copy").textContent = "Copied";
  setTimeout(() => ($("copy").textContent = "Copy"), 1500);
}

async function payAsCarol(): Promise<void> {
  if (!carolURL) return;
  const button = $<HTMLButtonElement>("pay-carol");
  const out = $("pay-result");
  button.disabled = true;
  out.textContent = "Carol is paying…";
  try {
    const res = await fetch(`${carolURL.replace(/\/+$/, "")}/pay`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ invoice: $<HTMLTextAreaElement>("payment-request").value }),
    });
    const body = (await res.json()) as { status?: string; error?: string };
    out.textContent = body.error ? `Carol's payment failed: ${body.error}` : `Carol's payment: ${body.status}`;
  } catch {
    out.textContent = "The pay-as-Carol helper of the dev command cannot be reached.";
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------
// Accepted sets waiting for a decision.

interface Pending {
  hash: string;
  setId: string;
  deadline: number; // ms since epoch
  li: HTMLLIElement;
  countdown: HTMLSpanElement;
}
const pending = new Map<string, Pending>();

function renderPendingEmpty(): void {
  $("accepted-empty").hidden = pending.size > 0;
}

function addPending(hash: string, setId: string): void {
  const key = `${hash}/${setId}`;
  if (pending.has(key)) return;
  const amount = amounts.get(hash);
  const countdown = el("span", { class: "countdown" });
  const settle = el("button", { type: "button", class: "settle" }, "Settle");
  const cancel = el("button", { type: "button", class: "cancel danger" }, "Cancel");
  // Permanent: every set of the hash is failed, now and until the invoice
  // expires (CancelInvoice with permanent, docs/api.md).
  const permanent = el("input", { type: "checkbox", class: "permanent" });
  const permanentLabel = el("label", { class: "permanent muted", title: "fail every later payment of this invoice too, until it expires" },
    permanent, " permanent");
  const error = el("p", { class: "error", hidden: "" });
  const li = el("li", { "data-hash": hash, "data-set-id": setId },
    el("span", { class: "mono" }, short(hash)), " ",
    el("span", {}, amount === undefined ? "" : amount === 0n ? "any amount" : formatMsat(amount)),
    el("br"),
    el("span", { class: "muted" }, "set ", el("span", { class: "mono" }, short(setId)), " · "),
    countdown,
    el("div", { class: "row" }, settle, cancel, permanentLabel),
    error,
  );
  const p: Pending = { hash, setId, deadline: Date.now() + acceptTimeoutSecs * 1000, li, countdown };
  pending.set(key, p);
  const decide = async (what: "settle" | "cancel") => {
    settle.disabled = cancel.disabled = permanent.disabled = true;
    error.hidden = true;
    try {
      const req = { hash: fromHex(hash), setId: fromHex(setId) };
      if (what === "settle") {
        await client.settleInvoice(req);
        removePending(key);
      } else if (permanent.checked) {
        await client.cancelInvoice({ ...req, permanent: true });
        // Every set of the hash is failed.
        for (const [k, other] of pending) if (other.hash === hash) removePending(k);
      } else {
        await client.cancelInvoice(req);
        removePending(key);
      }
    } catch (err) {
      error.textContent = describeError(err).message;
      error.hidden = false;
      settle.disabled = cancel.disabled = permanent.disabled = false;
    }
  };
  settle.addEventListener("click", () => void decide("settle"));
  cancel.addEventListener("click", () => void decide("cancel"));
  $("accepted-list").append(li);
  tick();
  renderPendingEmpty();
}

function removePending(key: string): void {
  pending.get(key)?.li.remove();
  pending.delete(key);
  renderPendingEmpty();
}

// tick updates the countdowns to the accept timeout, after which lnmuxd
// cancels the set by itself (sooner if lnd's auto-fail height is closer).
function tick(): void {
  const now = Date.now();
  for (const [key, p] of pending) {
    const left = Math.ceil((p.deadline - now) / 1000);
    if (left > 0) {
      p.countdown.textContent = `cancelled automatically in ${left} s`;
    } else if (left > -5) {
      p.countdown.textContent = "timed out: lnmuxd cancels it";
    } else {
      removePending(key);
    }
  }
}

async function watchAccepted(): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const a of client.subscribeInvoiceAccepted({})) {
        attempt = 0;
        addPending(toHex(a.hash), toHex(a.setId));
      }
    } catch (err) {
      banner(`Accepted payments: ${describeError(err).message}; reconnecting…`);
    }
    await sleep(Math.min(1000 * 2 ** attempt, 10_000));
  }
}

// ---------------------------------------------------------------------------
// Stored invoices, paged by sequence number.

const pageSize = 10;
const pageStarts: bigint[] = [1n];
let nextStart: bigint | undefined;

const statusText: Record<InvoiceStatus, string> = {
  [InvoiceStatus.UNKNOWN]: "unknown",
  [InvoiceStatus.SETTLE_REQUESTED]: "settle requested",
  [InvoiceStatus.SETTLED]: "settled",
  [InvoiceStatus.FAILED]: "failed",
};

function invoiceRow(inv: Invoice): HTMLTableRowElement {
  const paid = inv.amountPaidMsat > 0n ? inv.amountPaidMsat : inv.amountMsat;
  return el("tr", { "data-hash": toHex(inv.hash) },
    el("td", {}, inv.sequenceNumber.toString()),
    el("td", { class: "mono", title: toHex(inv.hash) }, short(toHex(inv.hash))),
    el("td", {}, formatMsat(paid)),
    el("td", { class: inv.status === InvoiceStatus.FAILED ? "bad" : inv.status === InvoiceStatus.SETTLED ? "ok" : "" }, statusText[inv.status] ?? String(inv.status)),
    el("td", {}, when(inv.finalizedAt || inv.settleRequestedAt)),
  );
}

async function loadInvoices(): Promise<void> {
  const start = pageStarts[pageStarts.length - 1];
  try {
    const res = await client.listInvoices({ sequenceStart: start, maxInvoicesCount: BigInt(pageSize) });
    const body = $("invoices-body");
    body.replaceChildren(...res.invoice.map(invoiceRow));
    if (res.invoice.length === 0) body.replaceChildren(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "No invoice on this page.")));
    nextStart = res.invoice.length === pageSize ? res.lastSequenceNumber + 1n : undefined;
    $<HTMLButtonElement>("invoices-next").disabled = nextStart === undefined;
    $<HTMLButtonElement>("invoices-prev").disabled = pageStarts.length === 1;
  } catch (err) {
    banner(`Invoices: ${describeError(err).message}`);
  }
}

// ---------------------------------------------------------------------------
// Lookup by hash (LookupInvoice).

const lookupText: Record<LookupState, string> = {
  [LookupState.UNSPECIFIED]: "unknown",
  [LookupState.OPEN_OR_UNKNOWN]: "open or unknown (lnmux keeps nothing for open invoices)",
  [LookupState.COLLECTING]: "collecting parts",
  [LookupState.ACCEPTED]: "accepted: waiting for Settle or Cancel",
  [LookupState.SETTLING]: "settling: the settlement is being stored",
  [LookupState.STORED]: "stored",
};

const htlcText: Record<HtlcStatus, string> = {
  [HtlcStatus.UNSPECIFIED]: "?",
  [HtlcStatus.PENDING]: "pending",
  [HtlcStatus.SETTLED]: "settled",
  [HtlcStatus.FAILED]: "failed",
};

async function lookup(ev: Event): Promise<void> {
  ev.preventDefault();
  const error = $("lookup-error");
  error.hidden = true;
  const details = $("lookup-details");
  details.replaceChildren();
  $("lookup-state").textContent = "";
  try {
    const res = await client.lookupInvoice({ hash: fromHex($<HTMLInputElement>("lookup-hash").value.trim()) });
    const inv = res.invoice;
    const state = $("lookup-state");
    state.dataset.state = LookupState[res.state];
    state.textContent = inv ? `${lookupText[res.state]}: ${statusText[inv.status]}` : lookupText[res.state];
    const row = (k: string, v: string) => details.append(el("dt", {}, k), el("dd", { class: "mono" }, v));
    if (res.setId.length) row("Set", toHex(res.setId));
    if (inv) {
      row("Sequence", inv.sequenceNumber.toString());
      row("Amount", inv.amountMsat === 0n ? "any amount" : formatMsat(inv.amountMsat));
      row("Paid", formatMsat(inv.amountPaidMsat));
      row("Requested", when(inv.settleRequestedAt));
      if (inv.finalizedAt) row("Final", when(inv.finalizedAt));
      for (const h of res.htlcs) {
        row("HTLC", `${short(toHex(h.nodePubKey))} ${h.chanId}:${h.htlcId} ${formatMsat(h.amountMsat)} ${htlcText[h.status]}`);
      }
    } else if (res.state !== LookupState.OPEN_OR_UNKNOWN) {
      row("Held", `${formatMsat(res.heldMsat)} of ${formatMsat(res.totalMsat)} in ${res.parts} part(s)`);
      if (res.acceptDeadline) row("Deadline", when(res.acceptDeadline));
    }
  } catch (err) {
    const e = describeError(err);
    error.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    error.hidden = false;
  }
}

// ---------------------------------------------------------------------------
// The event log (SubscribeInvoiceEvents), followed from a cursor; the
// newest events first, the last 100 kept.

const eventText: Record<EventType, string> = {
  [EventType.UNSPECIFIED]: "?",
  [EventType.ACCEPTED]: "accepted",
  [EventType.SETTLE_REQUESTED]: "settle requested",
  [EventType.SETTLED]: "settled",
  [EventType.FAILED]: "failed",
  [EventType.CANCELLED]: "cancelled permanently",
};
let following: AbortController | undefined;

async function followEvents(): Promise<void> {
  const input = $<HTMLInputElement>("events-from");
  if (!/^\d+$/.test(input.value.trim())) {
    $("events-status").textContent = "Enter a sequence number, such as 0.";
    return;
  }
  following?.abort();
  const abort = new AbortController();
  following = abort;
  $<HTMLButtonElement>("events-follow").disabled = true;
  $<HTMLButtonElement>("events-stop").disabled = false;
  const status = $("events-status");
  status.textContent = "Following…";
  const body = $("events-body");
  const from = BigInt(input.value.trim());
  const onRetry = (err: unknown, at: bigint) => {
    status.textContent = `Interrupted (${describeError(err).message}); resuming after ${at}…`;
  };
  for await (const ev of followInvoiceEvents(client, { from, signal: abort.signal, onRetry })) {
    const stored = ev.type !== EventType.ACCEPTED;
    if (stored) {
      input.value = ev.sequence.toString();
      status.textContent = `Following; last sequence ${ev.sequence}.`;
    }
    body.prepend(el("tr", { "data-hash": toHex(ev.hash), "data-type": EventType[ev.type] },
      el("td", {}, stored ? ev.sequence.toString() : ""),
      el("td", { class: ev.type === EventType.FAILED || ev.type === EventType.CANCELLED ? "bad" : ev.type === EventType.SETTLED ? "ok" : "" }, eventText[ev.type]),
      el("td", { class: "mono", title: toHex(ev.hash) }, short(toHex(ev.hash))),
      el("td", {}, formatMsat(ev.amountPaidMsat)),
    ));
    while (body.children.length > 100) body.lastElementChild?.remove();
  }
}

function stopEvents(): void {
  following?.abort();
  following = undefined;
  $<HTMLButtonElement>("events-follow").disabled = false;
  $<HTMLButtonElement>("events-stop").disabled = true;
  $("events-status").textContent = "Not following.";
}

// ---------------------------------------------------------------------------

function start(): void {
  if (foreignAPI) {
    // No call at all: the page says why and stops.
    banner(`api=${apiParam} is another origin: this console talks only to the lnmuxd that served it ` +
      `(${location.origin}), so that the macaroon kept in this tab is never sent elsewhere. ` +
      `Open the console that lnmuxd serves at /console/ instead.`);
    $("banner").dataset.reason = "foreign-api";
    $("identity").textContent = "not connected";
    for (const b of document.querySelectorAll<HTMLButtonElement>("button")) b.disabled = true;
    return;
  }
  const mac = $<HTMLInputElement>("macaroon");
  mac.value = sessionStorage.getItem(macaroonKey) ?? "";
  mac.addEventListener("change", () => {
    const v = mac.value.trim();
    if (v) sessionStorage.setItem(macaroonKey, v);
    else sessionStorage.removeItem(macaroonKey);
    void refreshInfo();
  });
  $("invoice-form").addEventListener("submit", (ev) => void createInvoice(ev));
  $("copy").addEventListener("click", () => void copyInvoice());
  $("pay-carol").addEventListener("click", () => void payAsCarol());
  $("invoices-next").addEventListener("click", () => {
    if (nextStart !== undefined) pageStarts.push(nextStart);
    void loadInvoices();
  });
  $("invoices-prev").addEventListener("click", () => {
    if (pageStarts.length > 1) pageStarts.pop();
    void loadInvoices();
  });
  $("invoices-refresh").addEventListener("click", () => void loadInvoices());
  $("lookup-form").addEventListener("submit", (ev) => void lookup(ev));
  $("events-follow").addEventListener("click", () => void followEvents());
  $("events-stop").addEventListener("click", stopEvents);
  renderPendingEmpty();
  void loadConfig().then(() => void watchAccepted());
  void refreshInfo();
  void loadInvoices();
  setInterval(() => void refreshInfo(), 5000);
  setInterval(tick, 1000);
}

start();

// followInvoiceEvents: the event log (SubscribeInvoiceEvents) with the
// cursor handling docs/api.md asks of a client. It yields every event and
// resubscribes from the last stored event's sequence when the stream
// breaks (a dropped slow client, a restart, a hand-over). Exactly-once is
// the caller's: persist ev.sequence once an event is handled, start the
// next run from it, and handle events idempotently (ACCEPTED events carry
// no sequence and may come twice).
import type { LnmuxClient } from "./index.js";
import {
  SubscribeInvoiceEventsResponse_EventType as EventType,
  type SubscribeInvoiceEventsResponse,
} from "./gen/lnmux/lnmux_pb.js";

export interface FollowOptions {
  /** The sequence of the last stored event handled; 0n for the whole log. */
  from: bigint;
  /** Ends the loop. */
  signal?: AbortSignal;
  /** Called before each resubscription, with the cursor it resumes from. */
  onRetry?: (err: unknown, from: bigint) => void;
  /** Longest wait between two attempts, in ms (default 10 000). */
  maxBackoffMs?: number;
}

export async function* followInvoiceEvents(
  client: LnmuxClient,
  opts: FollowOptions,
): AsyncGenerator<SubscribeInvoiceEventsResponse> {
  let cursor = opts.from;
  for (let attempt = 0; !opts.signal?.aborted; attempt++) {
    try {
      for await (const ev of client.subscribeInvoiceEvents({ fromSequence: cursor }, { signal: opts.signal })) {
        attempt = 0;
        if (ev.type !== EventType.ACCEPTED) cursor = ev.sequence;
        yield ev;
      }
    } catch (err) {
      if (opts.signal?.aborted) return;
      opts.onRetry?.(err, cursor);
    }
    const wait = Math.min(250 * 2 ** attempt, opts.maxBackoffMs ?? 10_000);
    await new Promise((r) => setTimeout(r, wait));
  }
}

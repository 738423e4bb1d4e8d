import { Code, ConnectError } from "@connectrpc/connect";

/** HumanError is an RPC error as a person reads it. */
export interface HumanError {
  /** The request field lnmuxd named (e.g. "amt_msat"), if any. */
  field?: string;
  /** One sentence, without a code or a stack trace. */
  message: string;
  /** The Connect code name, e.g. "invalid_argument". */
  code: string;
}

// lnmuxd writes InvalidArgument messages as "<field>: <problem>".
const fieldMessage = /^([a-z_][a-z0-9_.]*): (.+)$/;

/** describeError turns anything a call threw into a HumanError. */
export function describeError(err: unknown): HumanError {
  const ce = ConnectError.from(err);
  const code = Code[ce.code] ?? "unknown";
  const codeName = code.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
  const raw = ce.rawMessage;
  if (ce.code === Code.InvalidArgument) {
    const m = fieldMessage.exec(raw);
    if (m) return { field: m[1], message: m[2], code: codeName };
  }
  switch (ce.code) {
    case Code.Unavailable:
      return { message: raw && raw !== "[unavailable]" ? `lnmuxd is unavailable: ${raw}` : "lnmuxd cannot be reached", code: codeName };
    case Code.Unauthenticated:
    case Code.PermissionDenied:
      return { message: `Not allowed: ${raw || "a valid macaroon is needed"}`, code: codeName };
    case Code.Internal:
      return { message: "lnmuxd hit an internal error (see its log)", code: codeName };
    case Code.Canceled:
      return { message: "cancelled", code: codeName };
  }
  return { message: raw || codeName.replace(/_/g, " "), code: codeName };
}

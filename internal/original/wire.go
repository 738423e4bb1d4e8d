package original

// Scalar types of the original API's fields, named as in proto3. A field
// whose Type is none of them refers to a message or enum of Wire by name.
const (
	Bytes  = "bytes"
	String = "string"
	Bool   = "bool"
	Int64  = "int64"
	Uint64 = "uint64"
)

// Contract is a proto3 API of one file: one package, one service, top-level
// messages and enums only (the original's has nothing else: no nested
// types, maps, oneofs, options on fields or imports).
type Contract struct {
	Package  string
	Service  string
	Doc      string
	Methods  []Method
	Enums    []Enum
	Messages []Message
}

// Method is one RPC. Request and Response name messages of the contract.
type Method struct {
	Name         string
	Request      string
	Response     string
	ServerStream bool
	Doc          string
}

// Enum is an enum with its values in declaration order.
type Enum struct {
	Name   string
	Doc    string
	Values []EnumValue
}

// EnumValue is one value of an Enum.
type EnumValue struct {
	Number int32
	Name   string
}

// Message is a message with its fields in declaration order.
type Message struct {
	Name   string
	Doc    string
	Fields []Field
}

// Field is one field: its number, name, type (a scalar constant above, or
// the name of a message or enum) and whether it is repeated. proto3 gives
// each its default JSON name (lowerCamelCase).
type Field struct {
	Number   int32
	Name     string
	Type     string
	Repeated bool
}

// Wire is the original lnmux's API as its clients were compiled against
// it. The docs are this repository's summary of what the original did.
var Wire = Contract{
	Package: "lnmux",
	Service: "Service",
	Doc:     "The original multiplexer's API: invoices of its virtual node, their accepted HTLC sets, the application's settle or cancel decision, and the settlements it stored.",
	Methods: []Method{
		{Name: "GetInfo", Request: "GetInfoRequest", Response: "GetInfoResponse",
			Doc: "The virtual node's key, the network and the configured lnd nodes."},
		{Name: "AddInvoice", Request: "AddInvoiceRequest", Response: "AddInvoiceResponse",
			Doc: "Makes an invoice of the virtual node; nothing is stored."},
		{Name: "SubscribeInvoiceAccepted", Request: "SubscribeInvoiceAcceptedRequest", Response: "SubscribeInvoiceAcceptedResponse", ServerStream: true,
			Doc: "Streams every HTLC set that pays an invoice in full and waits for a decision."},
		{Name: "WaitForInvoiceFinalStatus", Request: "WaitForInvoiceFinalStatusRequest", Response: "WaitForInvoiceFinalStatusResponse",
			Doc: "Returns once a stored invoice is settled or failed in lnd."},
		{Name: "SettleInvoice", Request: "SettleInvoiceRequest", Response: "SettleInvoiceResponse",
			Doc: "Decides to settle an accepted set; repeating it is harmless."},
		{Name: "CancelInvoice", Request: "CancelInvoiceRequest", Response: "CancelInvoiceResponse",
			Doc: "Refuses an accepted set; refused with FailedPrecondition once its settlement was requested."},
		{Name: "ListInvoices", Request: "ListInvoicesRequest", Response: "ListInvoicesResponse",
			Doc: "Pages through the stored invoices by sequence number."},
	},
	Enums: []Enum{
		{Name: "InvoiceStatus", Doc: "Where a stored invoice stands.", Values: []EnumValue{
			{0, "UNKNOWN"},
			{1, "FAILED"},
			{2, "SETTLE_REQUESTED"},
			{3, "SETTLED"},
		}},
	},
	Messages: []Message{
		{Name: "GetInfoRequest"},
		{Name: "GetInfoResponse", Fields: []Field{
			{1, "pub_key", Bytes, false},
			{2, "network", String, false},
			{3, "nodes", "NodeInfo", true},
			{4, "auto_settle", Bool, false},
		}},
		{Name: "NodeInfo", Doc: "One configured lnd node.", Fields: []Field{
			{1, "pub_key", Bytes, false},
		}},
		{Name: "AddInvoiceRequest", Fields: []Field{
			{1, "amt_msat", Int64, false},
			{2, "description", String, false},
			{3, "description_hash", Bytes, false},
			{4, "expiry_secs", Int64, false},
		}},
		{Name: "AddInvoiceResponse", Fields: []Field{
			{1, "payment_request", String, false},
			{2, "preimage", Bytes, false},
			{3, "hash", Bytes, false},
		}},
		{Name: "SubscribeInvoiceAcceptedRequest"},
		{Name: "SubscribeInvoiceAcceptedResponse", Fields: []Field{
			{1, "hash", Bytes, false},
			{2, "set_id", Bytes, false},
		}},
		{Name: "WaitForInvoiceFinalStatusRequest", Fields: []Field{
			{1, "hash", Bytes, false},
		}},
		{Name: "WaitForInvoiceFinalStatusResponse", Fields: []Field{
			{1, "invoice_status", "InvoiceStatus", false},
		}},
		{Name: "SettleInvoiceRequest", Fields: []Field{
			{1, "hash", Bytes, false},
			{2, "set_id", Bytes, false},
		}},
		{Name: "SettleInvoiceResponse"},
		{Name: "CancelInvoiceRequest", Fields: []Field{
			{1, "hash", Bytes, false},
			{2, "set_id", Bytes, false},
		}},
		{Name: "CancelInvoiceResponse"},
		{Name: "ListInvoicesRequest", Fields: []Field{
			{1, "max_invoices_count", Uint64, false},
			{2, "sequence_start", Uint64, false},
		}},
		{Name: "ListInvoicesResponse", Fields: []Field{
			{1, "invoice", "Invoice", true},
			{2, "first_sequence_number", Uint64, false},
			{3, "last_sequence_number", Uint64, false},
		}},
		{Name: "Invoice", Doc: "A stored invoice; times are unix seconds.", Fields: []Field{
			{1, "hash", Bytes, false},
			{2, "preimage", Bytes, false},
			{3, "amount_msat", Uint64, false},
			{4, "status", "InvoiceStatus", false},
			{5, "settle_requested_at", Uint64, false},
			{6, "finalized_at", Uint64, false},
			{7, "sequence_number", Uint64, false},
		}},
	},
}

// Message returns the message called name, or false.
func (c Contract) Message(name string) (Message, bool) {
	for _, m := range c.Messages {
		if m.Name == name {
			return m, true
		}
	}
	return Message{}, false
}

// Enum returns the enum called name, or false.
func (c Contract) Enum(name string) (Enum, bool) {
	for _, e := range c.Enums {
		if e.Name == name {
			return e, true
		}
	}
	return Enum{}, false
}

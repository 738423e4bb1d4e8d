package prometheus

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// rpcPrefix is the path prefix of lnmux.Service's procedures: the same for
// Connect, gRPC and gRPC-Web.
const rpcPrefix = "/lnmux.Service/"

// InstrumentRPC measures the API calls served by next, by procedure, as
// lnmux_rpc_duration_seconds. Streaming calls (the subscriptions,
// WaitForInvoiceFinalStatus) last as long as the client listens; dashboards
// leave them out of latency panels. Call it once per Metrics.
func (m *Metrics) InstrumentRPC(next http.Handler) http.Handler {
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lnmux_rpc_duration_seconds",
		Help:    "Duration of lnmux.Service calls by procedure (streams: how long they stayed open).",
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60},
	}, []string{"procedure"})
	m.reg.MustRegister(dur)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proc, ok := strings.CutPrefix(r.URL.Path, rpcPrefix)
		if !ok || r.Method != http.MethodPost || strings.ContainsRune(proc, '/') || len(proc) > 64 {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		next.ServeHTTP(w, r)
		// Unknown procedures answer 404 and are not recorded: a label per
		// made-up name would grow without bound.
		if known[proc] {
			dur.WithLabelValues(proc).Observe(time.Since(start).Seconds())
		}
	})
}

// known lists lnmux.Service's procedures, read from the service's
// descriptor so that a new RPC is measured without anyone remembering to
// add it here.
var known = func() map[string]bool {
	methods := lnmuxpb.File_lnmux_lnmux_proto.Services().ByName("Service").Methods()
	m := make(map[string]bool, methods.Len())
	for i := range methods.Len() {
		m[string(methods.Get(i).Name())] = true
	}
	return m
}()

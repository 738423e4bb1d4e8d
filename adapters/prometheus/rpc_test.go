package prometheus

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
)

// TestEveryProcedureRecorded: each method of lnmux.Service, as the proto
// defines it, gets its latency series; a made-up name does not.
func TestEveryProcedureRecorded(t *testing.T) {
	m := New()
	h := m.InstrumentRPC(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	methods := lnmuxpb.File_lnmux_lnmux_proto.Services().ByName("Service").Methods()
	if methods.Len() == 0 {
		t.Fatal("no methods in the lnmux.Service descriptor")
	}
	for i := range methods.Len() {
		name := string(methods.Get(i).Name())
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, rpcPrefix+name, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, rpcPrefix+"MadeUp", nil))
	out := scrape(t, m)
	for i := range methods.Len() {
		name := string(methods.Get(i).Name())
		if !strings.Contains(out, `lnmux_rpc_duration_seconds_count{procedure="`+name+`"} 1`) {
			t.Errorf("no latency recorded for %s", name)
		}
	}
	if strings.Contains(out, `procedure="MadeUp"`) {
		t.Error("a made-up procedure got a series of its own")
	}
}

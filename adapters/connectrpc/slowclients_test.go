package connectrpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	lnmuxpb "github.com/lnmux/lnmux/proto/lnmux"
	"github.com/lnmux/lnmux/proto/lnmux/lnmuxpbconnect"
)

// safety bounds how long a test waits for the server before it fails: a
// generous bound for a loaded machine, never an expected duration.
const safety = time.Minute

// getInfoRequest is a complete HTTP/1.1 Connect JSON GetInfo call.
const getInfoRequest = "POST /lnmux.Service/GetInfo HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
	"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

// TestBodyReadDeadline: connections that announce a large body and send one
// byte are answered and closed once the body read deadline passes, over
// HTTP/1.1 and h2c, and the deadline does not cut a stream that lasts
// longer nor a keep-alive connection that is reused later.
func TestBodyReadDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	fake := newFake()
	fake.block = true
	srv := newTestServer(t, fake, WithBodyReadTimeout(timeout))
	addr := srv.Listener.Addr().String()

	const conns = 50
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		proc := []string{"AddInvoice", "SettleInvoice", "SubscribeSingleInvoice", "WaitForInvoiceFinalStatus"}[i%4]
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(safety))
			ct := "application/json"
			if strings.HasPrefix(proc, "Subscribe") {
				ct = "application/connect+json"
			}
			if _, err := fmt.Fprintf(c, "POST /lnmux.Service/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"+
				"Content-Length: 100000\r\n\r\n{", proc, ct); err != nil {
				errs <- err
				return
			}
			// The server answers and closes; the client never sends more.
			if _, err := io.ReadAll(c); err != nil {
				errs <- fmt.Errorf("%s: the connection was not closed by the server: %w", proc, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if calls := fake.Calls(); len(calls) != 0 {
		t.Errorf("calls with an incomplete body reached the service: %v", calls)
	}

	// h2c: the stream fails, the connection serves on.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("{")) }()
	ctx, cancel := context.WithTimeout(t.Context(), safety)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+lnmuxpbconnect.ServiceSettleInvoiceProcedure, pr)
	req.ContentLength = 100000
	req.Header.Set("Content-Type", "application/json")
	h2 := h2cClient(t)
	res, err := h2.Do(req)
	if err != nil {
		t.Fatalf("h2c call with an incomplete body: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode == http.StatusOK {
		t.Errorf("h2c call with an incomplete body: %s", res.Status)
	}

	// A stream outlives the deadline; so does a keep-alive connection.
	client := lnmuxpbconnect.NewServiceClient(srv.Client(), srv.URL)
	st, err := client.SubscribeSingleInvoice(t.Context(), connect.NewRequest(&lnmuxpb.SubscribeSingleInvoiceRequest{Hash: testHash[:]}))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Receive() {
		t.Fatalf("stream: %v", st.Err())
	}
	if _, err := client.GetInfo(t.Context(), connect.NewRequest(&lnmuxpb.GetInfoRequest{})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * timeout) // every deadline set so far has passed
	if _, err := client.GetInfo(t.Context(), connect.NewRequest(&lnmuxpb.GetInfoRequest{})); err != nil {
		t.Errorf("GetInfo on a reused connection: %v", err)
	}
	// The stream's handler still runs: the server did not end it.
	if n := srv.h.Stats().OpenStreams; n != 1 {
		t.Errorf("%d long-lived calls open after the body deadline, want the subscription's 1", n)
	}
	_ = st.Close()
	waitFor(t, func() bool { return srv.h.Stats().OpenStreams == 0 })
}

// rawConn is an HTTP/1.1 connection from a chosen loopback address.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialFrom(t *testing.T, from, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(safety))
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// getInfo sends a GetInfo call on the connection and reads its answer:
// nil when served, an error when the server closed the connection.
func (c *rawConn) getInfo() error {
	if _, err := io.WriteString(c, getInfoRequest); err != nil {
		return err
	}
	res, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return errors.New(res.Status)
	}
	return nil
}

// closedByServer reports whether err says the server closed the
// connection (rather than a timeout of the test's own).
func closedByServer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// TestConnectionLimit: connections beyond the total or per-client cap are
// closed without being served; closing one frees its slot.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	h, err := NewHandler(newFake(), log)
	if err != nil {
		t.Fatal(err)
	}
	lim := LimitListener(ln, ConnLimits{Total: 3, PerClient: 2}, log)
	srv := NewHTTPServer("", h)
	go func() { _ = srv.Serve(lim) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()

	a1, a2 := dialFrom(t, "127.0.0.1", addr), dialFrom(t, "127.0.0.1", addr)
	for _, c := range []*rawConn{a1, a2} {
		if err := c.getInfo(); err != nil {
			t.Fatalf("a connection within the limits: %v", err)
		}
	}
	if err := dialFrom(t, "127.0.0.1", addr).getInfo(); !closedByServer(err) {
		t.Errorf("a third connection from 127.0.0.1 (2 per client): %v, want closed by the server", err)
	}
	b1 := dialFrom(t, "127.0.0.2", addr)
	if err := b1.getInfo(); err != nil {
		t.Errorf("a connection from 127.0.0.2 within the total: %v", err)
	}
	if err := dialFrom(t, "127.0.0.3", addr).getInfo(); !closedByServer(err) {
		t.Errorf("a fourth connection (3 in total): %v, want closed by the server", err)
	}
	if st := lim.Stats(); st.Open != 3 || st.Refused != 2 {
		t.Errorf("stats %+v, want 3 open and 2 refused", st)
	}
	if !strings.Contains(logs.String(), "connection limit reached") {
		t.Errorf("the refusal is not logged:\n%s", logs)
	}

	// Closing a connection frees its slot once the server has seen it go.
	_ = a1.Close()
	waitFor(t, func() bool { return lim.Stats().Open == 2 })
	if err := dialFrom(t, "127.0.0.1", addr).getInfo(); err != nil {
		t.Errorf("a connection after one was closed: %v", err)
	}
	if err := a2.getInfo(); err != nil {
		t.Errorf("a kept connection: %v", err)
	}
}

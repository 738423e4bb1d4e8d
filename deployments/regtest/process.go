package regtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// process is one daemon in its own process group, its stdout and stderr
// appended to a log file.
type process struct {
	name    string
	bin     string
	args    []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start spawns the daemon. It is killed with its whole process group by
// stop, and by the kernel if this process dies first (Pdeathsig).
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// exited reports whether a started daemon has died, with its exit error.
func (p *process) exited() (bool, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false, nil
	}
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// running reports whether the daemon was started and has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	started := p.cmd != nil
	p.mu.Unlock()
	if !started {
		return false
	}
	dead, _ := p.exited()
	return !dead
}

// stop asks the daemon to shut down (SIGINT), waits up to grace, then kills
// its process group. It is a no-op for a daemon that is not running.
func (p *process) stop(grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGINT)
	var err error
	select {
	case <-done:
	case <-time.After(grace):
		err = fmt.Errorf("%s did not stop within %s: killed", p.name, grace)
	}
	// Kill whatever is left of the group, also after a clean exit.
	if kerr := syscall.Kill(-pgid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) && err == nil {
		err = kerr
	}
	<-done
	p.mu.Lock()
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	return err
}

// waitFor polls check until it succeeds, the daemon dies or ctx ends.
func (p *process) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	var last error
	for {
		if dead, err := p.exited(); dead {
			return fmt.Errorf("%s exited while waiting for %s (%v); log: %s", p.name, what, err, p.logPath) //nolint:errorlint // err is nil after a clean exit; the text is what matters
		}
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %s: %w (last error: %v); log: %s", p.name, what, ctx.Err(), last, p.logPath) //nolint:errorlint // the first error is the outcome; the last attempt's is a hint
		case <-time.After(100 * time.Millisecond):
		}
	}
}

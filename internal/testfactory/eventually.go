package testfactory

import (
	"testing"
	"time"
)

// Eventually calls cond until it reports true, failing the test after timeout with what was awaited and
// cond's last error. It is how tests wait for asynchronous work: by its effect, never by sleeping a fixed
// time. An error from cond does not end the wait (a server may be restarting); it is reported if the wait
// times out. The pause between calls grows from 1 ms to 50 ms.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for pause := time.Millisecond; ; pause = min(pause*2, 50*time.Millisecond) {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
		}
		time.Sleep(pause)
	}
}

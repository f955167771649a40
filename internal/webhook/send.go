package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/fieldtrack/fieldtrack/internal/db"
)

// verdict is what an attempt's result means for the delivery.
type verdict int

const (
	delivered verdict = iota // 2xx
	retry                    // worth another attempt: network error, timeout, 3xx, 408, 429, 5xx
	permanent                // dead-letter now: other 4xx, refused target, unusable URL or payload
	gone                     // 410: dead-letter and disable the webhook
	aborted                  // shutdown interrupted the attempt: give the claim back untried
)

// outcome is one attempt's result.
type outcome struct {
	verdict    verdict
	status     int           // HTTP status; 0 when there was no answer
	body       string        // the answer, truncated to maxStoredBody bytes of valid UTF-8
	err        string        // why it failed, as stored and shown to admins; "" on success
	detail     string        // the full error but the URL, for the server's log and trace (it may name addresses)
	retryAfter time.Duration // the receiver's Retry-After
	duration   time.Duration
}

// newClient is the HTTP client of every attempt: no proxy (a proxy would be dialled instead of the target
// and defeat the SSRF guard), no redirects (a 3xx is the answer), the attempt timeout, and a dialer that
// refuses internal addresses after DNS resolution (AllowPrivateTargets lets loopback, private and link-local
// ones through, see blockedReason).
func newClient(c Config) *http.Client {
	dialer := &net.Dialer{Timeout: min(c.Timeout, 10*time.Second), KeepAlive: 30 * time.Second,
		Control: guard(c.AllowPrivateTargets)}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   max(c.Concurrency, 4), // one kept-alive connection per sender: no handshake per attempt
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       c.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// send makes one attempt of a claimed delivery. ctx is the worker's: when it ends (shutdown) the attempt
// is aborted rather than failed.
func (w *Worker) send(ctx context.Context, d db.DeliveryClaimRow) outcome {
	var body bytes.Buffer
	if err := json.Compact(&body, d.Payload); err != nil {
		return outcome{verdict: permanent, err: "event payload is not valid JSON: " + err.Error()}
	}
	u, err := url.Parse(d.Url)
	switch {
	case err != nil || u.Host == "":
		return outcome{verdict: permanent, err: "webhook URL is malformed"}
	case u.Scheme != "https" && (w.cfg.HTTPSOnly || u.Scheme != "http"):
		return outcome{verdict: permanent, err: fmt.Sprintf("webhook URL scheme %q is not allowed", u.Scheme)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Url, bytes.NewReader(body.Bytes()))
	if err != nil {
		return outcome{verdict: permanent, err: "webhook URL is malformed: " + err.Error()}
	}
	sig := signature{msgID: d.EventID.String(), timestamp: time.Now(), body: body.Bytes()}
	sig.setHeaders(req.Header, d.Secret, d.EventType, d.ID.String())
	// The attempt's span as the receiver's parent (traceparent, tracestate): W3C trace context only, never
	// baggage, which may carry what a third party should not see.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))

	start := time.Now()
	res, err := w.client.Do(req)
	if err != nil {
		o := outcome{verdict: retry, err: storedError(err), detail: withoutURL(err), duration: time.Since(start)}
		var ne net.Error
		switch {
		case ctx.Err() != nil:
			o.verdict = aborted
		case isBlocked(err):
			o.verdict, o.err = permanent, errTargetNotAllowed
		case errors.As(err, &ne) && ne.Timeout():
			o.err = fmt.Sprintf("timeout: no complete answer within %s", w.cfg.Timeout)
		}
		return o
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, maxStoredBody))
	// Read a little more so the connection can be reused; a receiver that talks on is cut off.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	o := outcome{status: res.StatusCode, body: storable(raw), duration: time.Since(start)}
	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		return o // the status counts; an answer cut short afterwards does not undo it
	case code == http.StatusGone:
		o.verdict, o.err = gone, "HTTP 410 Gone: the endpoint asked to be disabled"
	case code >= 300 && code < 400:
		o.verdict, o.err = retry, fmt.Sprintf("HTTP %d: redirect to %q not followed", code, res.Header.Get("Location"))
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		o.verdict, o.err = retry, fmt.Sprintf("HTTP %d", code)
	case code >= 400:
		o.verdict, o.err = permanent, fmt.Sprintf("HTTP %d: rejected by the endpoint (not retried)", code)
	default:
		o.verdict, o.err = retry, fmt.Sprintf("HTTP %d: unexpected status", code)
	}
	o.retryAfter = parseRetryAfter(res.Header.Get("Retry-After"), time.Now())
	return o
}

// logged is what the server's log and the attempt's span say of its failure: the whole error, addresses
// included, but not the webhook's URL, whose path or query may hold the receiver's secret (the delivery
// log, which only the organization's admins read, keeps the URL as they typed it).
func (o outcome) logged() string {
	if o.detail != "" {
		return o.detail
	}
	return o.err
}

// withoutURL is err without the URL net/http puts in front of it ("Post \"https://…\": dial tcp …").
func withoutURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// storable makes a receiver's answer fit a text column: valid UTF-8 without NUL bytes. A character cut
// by the truncation is dropped.
func storable(b []byte) string {
	return strings.ToValidUTF8(strings.ReplaceAll(string(b), "\x00", ""), "")
}

// storedError is a failed request's error as the delivery log keeps it: without the addresses a network
// error names (the one a hostname resolved to, this server's own, the DNS server's). An admin reads the
// delivery log and must not learn the internal network from it; the server's log keeps the whole error.
// A name that does not resolve is stored as a refused target is ("target not allowed"): otherwise the log
// would tell an internal name that exists (refused) from one that does not (no such host).
func storedError(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return errTargetNotAllowed
	}
	msg := err.Error()
	var op *net.OpError
	if errors.As(err, &op) && (op.Source != nil || op.Addr != nil) {
		bare := *op
		bare.Source, bare.Addr = nil, nil
		msg = strings.Replace(msg, op.Error(), bare.Error(), 1)
	}
	return msg
}

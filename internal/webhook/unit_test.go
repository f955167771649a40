package webhook

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldtrack/fieldtrack/internal/webhook/webhooktest"
)

// The Standard Webhooks specification's published test vector: matching it is what lets receivers verify
// our deliveries with any of that specification's libraries.
func TestSignature_MatchesTheStandardWebhooksVector(t *testing.T) {
	t.Parallel()
	s := signature{msgID: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: time.Unix(1614265330, 0), body: []byte(`{"test": 2432232314}`)}
	if got, want := s.standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("standard signature %s, want %s", got, want)
	}
}

func TestSignature_HeadersVerifyWithBothSchemes(t *testing.T) {
	t.Parallel()
	for _, secret := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "plain-secret-0123456789"} {
		now := time.Now()
		s := signature{msgID: "3f1c8e0e-1111-4a4a-9b9b-000000000001", timestamp: now, body: []byte(`{"a":1}`)}
		h := http.Header{}
		s.setHeaders(h, secret, "session.checkin", "delivery-1")
		if err := webhooktest.VerifyStandard(secret, h, s.body, now); err != nil {
			t.Errorf("%s: standard: %v", secret, err)
		}
		if err := webhooktest.VerifyLegacy(secret, h, s.body, now); err != nil {
			t.Errorf("%s: legacy: %v", secret, err)
		}
		if err := webhooktest.VerifyStandard(secret, h, []byte(`{"a":2}`), now); err == nil {
			t.Errorf("%s: a changed body verified", secret)
		}
		if err := webhooktest.VerifyStandard(secret, h, s.body, now.Add(6*time.Minute)); err == nil {
			t.Errorf("%s: a stale timestamp verified", secret)
		}
		if h.Get("User-Agent") != "FieldTrack-Webhooks/1.0" || h.Get("Content-Type") != "application/json" ||
			h.Get("X-FieldTrack-Event") != "session.checkin" || h.Get("X-FieldTrack-Delivery-Id") != "delivery-1" {
			t.Errorf("headers %v", h)
		}
	}
}

func TestBlockedReason_RefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		addr          string
		strict, allow string // the reason without and with WEBHOOK_ALLOW_PRIVATE_TARGETS; "" = may be dialled
	}{
		// What the flag allows: loopback, private and link-local unicast, also as IPv4-mapped, NAT64 or 6to4.
		{"127.0.0.1", "loopback", ""},
		{"127.255.0.9", "loopback", ""},
		{"::1", "loopback", ""},
		{"::ffff:127.0.0.1", "loopback", ""},
		{"10.1.2.3", "private", ""},
		{"172.16.0.1", "private", ""},
		{"172.31.255.255", "private", ""},
		{"192.168.1.1", "private", ""},
		{"fd00:ec2::254", "private", ""},
		{"169.254.169.254", "link-local", ""},
		{"fe80::1", "link-local", ""},
		{"fe80::1%eth0", "link-local", ""},
		{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local", ""}, // last of fe80::/10
		{"64:ff9b::a9fe:a9fe", "link-local", ""},                      // NAT64 of 169.254.169.254
		{"2002:7f00:1::", "loopback", ""},                             // 6to4 of 127.0.0.1
		{"::ffff:a00:1", "private", ""},                               // IPv4-mapped 10.0.0.1

		// Not global unicast: refused with the flag too.
		{"0.0.0.0", "unspecified", "unspecified"},
		{"::", "unspecified", "unspecified"},
		{"::ffff:0.0.0.0", "unspecified", "unspecified"},
		{"224.0.0.0", "multicast", "multicast"},
		{"224.0.0.1", "multicast", "multicast"},
		{"239.255.255.255", "multicast", "multicast"},
		{"::ffff:224.0.0.1", "multicast", "multicast"},
		{"ff00::", "multicast", "multicast"},
		{"ff01::1", "multicast", "multicast"}, // interface-local
		{"ff02::1", "multicast", "multicast"}, // link-local
		{"ff0e::1", "multicast", "multicast"}, // global scope
		{"255.255.255.255", "reserved", "reserved"},

		// The special-purpose ranges, with the addresses just inside and just outside each new one.
		{"100.64.0.1", "carrier-grade NAT", "carrier-grade NAT"},
		{"0.1.2.3", "this-network", "this-network"},
		{"198.18.0.1", "benchmarking", "benchmarking"},
		{"fec0::1", "site-local", "site-local"}, // just past fe80::/10
		{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local", "site-local"},

		{"64:ff9b:1::", "local-use NAT64", "local-use NAT64"},
		{"64:ff9b:1::a00:1", "local-use NAT64", "local-use NAT64"}, // whatever IPv4 it may carry
		{"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "local-use NAT64", "local-use NAT64"},
		{"64:ff9b:0:ffff:ffff:ffff:ffff:ffff", "reserved", "reserved"}, // just below: neither NAT64 prefix
		{"64:ff9b:2::", "reserved", "reserved"},                        // just above

		{"::2", "IPv4-compatible", "IPv4-compatible"},
		{"::7f00:1", "IPv4-compatible", "IPv4-compatible"}, // ::127.0.0.1 is not loopback, and the flag does not allow it
		{"::5db8:d822", "IPv4-compatible", "IPv4-compatible"},
		{"::ffff:ffff", "IPv4-compatible", "IPv4-compatible"}, // last of ::/96
		{"::1:0:0", "reserved", "reserved"},                   // first after ::/96

		{"::ffff:0:0:0", "IPv4-translated", "IPv4-translated"},
		{"::ffff:0:5db8:d822", "IPv4-translated", "IPv4-translated"}, // a public IPv4 address, translated
		{"::ffff:0:ffff:ffff", "IPv4-translated", "IPv4-translated"},
		{"::fffe:ffff:ffff:ffff", "reserved", "reserved"}, // just below
		{"::ffff:1:0:0", "reserved", "reserved"},          // just above
		{"::ffff:5db8:d822", "", ""},                      // IPv4-mapped (::ffff:0:0/96): judged as 93.184.216.34

		{"2001::", "Teredo", "Teredo"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo", "Teredo"}, // RFC 4380's example
		{"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "Teredo", "Teredo"},
		{"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "", ""}, // just below
		{"2001:1::", "", ""},                                // just above

		{"2001:2::", "benchmarking", "benchmarking"},
		{"2001:2:0:ffff:ffff:ffff:ffff:ffff", "benchmarking", "benchmarking"},
		{"2001:2:1::", "", ""},
		{"2001:db8::1", "documentation", "documentation"},
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "", ""},
		{"2001:db9::", "", ""},
		{"3fff::", "documentation", "documentation"},
		{"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation", "documentation"},
		{"3fff:1000::", "", ""},
		{"100::", "discard-only", "discard-only"},
		{"100:0:0:1::", "reserved", "reserved"}, // just past 100::/64

		// IPv6 outside 2000::/3 is reserved, though netip counts it as global unicast.
		{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved", "reserved"},
		{"2000::", "", ""},
		{"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "", ""},
		{"4000::", "reserved", "reserved"},
		{"5f00::1", "reserved", "reserved"},

		// Public addresses.
		{"93.184.216.34", "", ""},
		{"223.255.255.255", "", ""}, // just below multicast
		{"172.32.0.1", "", ""},
		{"100.128.0.1", "", ""},
		{"2606:4700::1111", "", ""},
		{"64:ff9b::5db8:d822", "", ""}, // NAT64 of a public address
	} {
		addr := netip.MustParseAddr(c.addr)
		if got := blockedReason(addr, false); got != c.strict {
			t.Errorf("blockedReason(%s, false) = %q, want %q", c.addr, got, c.strict)
		}
		if got := blockedReason(addr, true); got != c.allow {
			t.Errorf("blockedReason(%s, true) = %q, want %q", c.addr, got, c.allow)
		}
	}
}

// The dialer's guard refuses what blockedReason refuses, with the flag too, and its (logged) message says
// when the flag would help.
func TestGuard_RefusesTheDialledAddress(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		address      string
		allowPrivate bool
		want         string // "" = allowed; otherwise the refusal's message
	}{
		{"93.184.216.34:443", false, ""},
		{"127.0.0.1:8080", true, ""},
		{"127.0.0.1:8080", false,
			"SSRF guard: refusing to connect to 127.0.0.1 (loopback address; WEBHOOK_ALLOW_PRIVATE_TARGETS=true allows it)"},
		{"[::ffff:10.0.0.1]:80", false,
			"SSRF guard: refusing to connect to 10.0.0.1 (private address; WEBHOOK_ALLOW_PRIVATE_TARGETS=true allows it)"},
		{"[2001::1]:443", true, "SSRF guard: refusing to connect to 2001::1 (Teredo address)"},
		{"0.0.0.0:8080", true, "SSRF guard: refusing to connect to 0.0.0.0 (unspecified address)"},
	} {
		err := guard(c.allowPrivate)("tcp", c.address, nil)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("guard(%t)(%s) = %v, want allowed", c.allowPrivate, c.address, err)
		case c.want != "" && (err == nil || !isBlocked(err) || err.Error() != c.want):
			t.Errorf("guard(%t)(%s) = %v, want %q", c.allowPrivate, c.address, err, c.want)
		}
	}
}

// A network error keeps its story in the delivery log but not the addresses: the one a hostname resolved
// to, the server's own, the DNS server's. The URL stays as the admin typed it.
func TestStoredError_LeavesOutNetworkAddresses(t *testing.T) {
	t.Parallel()
	tcp := func(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	post := func(u string, err error) error { return &url.Error{Op: "Post", URL: u, Err: err} }
	refused := &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		err  error
		want string
	}{
		{post("https://hooks.example.com/x", &net.OpError{Op: "dial", Net: "tcp", Addr: tcp("10.9.8.7:443"), Err: refused}),
			`Post "https://hooks.example.com/x": dial tcp: connect: connection refused`},
		{post("https://hooks.example.com/x", &net.OpError{Op: "read", Net: "tcp", Source: tcp("10.0.0.7:40312"),
			Addr: tcp("93.184.216.34:443"), Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}),
			`Post "https://hooks.example.com/x": read tcp: read: connection reset by peer`},
		{post("https://hooks.example.com/x", &net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "no such host", Name: "hooks.example.com", Server: "10.0.0.2:53", IsNotFound: true}}),
			`target not allowed`},
		{post("http://93.184.216.34:8080/x", &net.OpError{Op: "dial", Net: "tcp", Addr: tcp("93.184.216.34:8080"), Err: refused}),
			`Post "http://93.184.216.34:8080/x": dial tcp: connect: connection refused`},
		{post("https://hooks.example.com/x", errors.New("net/http: TLS handshake timeout")),
			`Post "https://hooks.example.com/x": net/http: TLS handshake timeout`},
	} {
		if got := storedError(c.err); got != c.want {
			t.Errorf("storedError(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// A refused target is stored as the generic text only, in the delivery and in its attempt log: the refusal
// names the address the hostname resolved to, and admins read those through the API (a DNS oracle). The
// server's log line keeps the address, at warn level.
func TestWorker_RefusedTargetStoresOnlyTheGenericError(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	port := f.rc.URL[strings.LastIndex(f.rc.URL, ":")+1:]
	hook := f.newWebhook("http://localhost:" + port + "/hook")
	_, delivery := f.event(hook)
	c := f.config()
	c.AllowPrivateTargets = false
	var logs bytes.Buffer // written under the handler's lock; read once the attempts are over
	w := NewWorker(f.pool, c, slog.New(slog.NewTextHandler(&logs, nil)))
	f.until(w, "the refusal", func() bool { return f.delivery(delivery).Status != "pending" })

	d := f.delivery(delivery)
	if d.Status != "failed" || d.LastError == nil || *d.LastError != "target not allowed" ||
		d.ResponseStatus != nil || d.ResponseBody != nil {
		t.Fatalf("refused delivery %+v (error %q)", d, text(d.LastError))
	}
	var stored []string
	rows, err := f.pool.Query(context.Background(), `SELECT coalesce(error, '') FROM webhook_delivery_attempts
		WHERE organization_id = $1 AND delivery_id = $2`, f.org.ID, delivery)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, e)
	}
	if rows.Err() != nil || len(stored) != 1 || stored[0] != "target not allowed" {
		t.Fatalf("attempt log errors %q (%v)", stored, rows.Err())
	}
	for _, ip := range []string{"127.0.0.1", "::1"} {
		if strings.Contains(*d.LastError+stored[0], ip) {
			t.Errorf("the stored error names %s", ip)
		}
	}
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, delivery.String()) && strings.Contains(l, "level=WARN") {
			line = l
		}
	}
	if !strings.Contains(line, "refusing to connect to 127.0.0.1 (loopback") && !strings.Contains(line, "refusing to connect to ::1 (loopback") {
		t.Errorf("no warn line with the refused address for delivery %s in the server's log:\n%s", delivery, logs.String())
	}
	if f.rc.Count() != 0 {
		t.Fatalf("the receiver got %d requests", f.rc.Count())
	}
}

func TestCheckURL_AppliesTheEnvironmentsRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url                     string
		httpsOnly, allowPrivate bool
		want                    string // "" = accepted; otherwise a fragment of the message
	}{
		{"https://hooks.example.com/x", true, false, ""},
		{"http://hooks.example.com/x", false, false, ""},
		{"http://hooks.example.com/x", true, false, "Only HTTPS URLs are permitted (received protocol: http:)"},
		{"ftp://hooks.example.com/x", false, false, "Only HTTP(S) URLs are permitted (received protocol: ftp:)"},
		{"not a url", false, false, "malformed"},
		{"https://", false, false, "malformed"},
		{"mailto:a@b.c", false, false, "malformed"},
		{"http://localhost:8080/x", false, false, "Loopback, private, and link-local"},
		{"http://api.localhost/x", false, false, "Loopback, private, and link-local"},
		{"http://127.0.0.1/x", false, false, "Loopback, private, and link-local"},
		{"http://[::1]:9/x", false, false, "Loopback, private, and link-local"},
		{"http://169.254.169.254/latest/meta-data", false, false, "Loopback, private, and link-local"},
		{"http://10.0.0.5/x", false, false, "Loopback, private, and link-local"},
		{"http://[::ffff:127.0.0.1]/x", false, false, "Loopback, private, and link-local"},
		{"http://[2001::1]/x", false, false, "Loopback, private, and link-local"},
		{"http://hooks.internal.example/x", false, false, ""}, // a name is not resolved when saved
		{"http://localhost:8080/x", false, true, ""},
		{"http://127.0.0.1:9/x", false, true, ""},
		{"http://[::ffff:127.0.0.1]:9/x", false, true, ""},
		{"http://[fe80::1%25eth0]:9/x", false, true, ""},
		{"http://0.0.0.0:8080/x", false, true, "Multicast, reserved and other special-purpose addresses are not permitted"},
		{"http://[2001::1]/x", false, true, "Multicast, reserved and other special-purpose"},
		{"http://[64:ff9b:1::a00:1]/x", false, true, "Multicast, reserved and other special-purpose"},
		{"http://[::7f00:1]/x", false, true, "Multicast, reserved and other special-purpose"},
		{"http://[::ffff:0:7f00:1]/x", false, true, "Multicast, reserved and other special-purpose"},
		{"http://[ff02::1]/x", false, true, "Multicast, reserved and other special-purpose"},
	}
	for _, c := range cases {
		err := CheckURL(c.url, c.httpsOnly, c.allowPrivate)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("CheckURL(%q) = %v, want accepted", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("CheckURL(%q) = %v, want %q", c.url, err, c.want)
		}
	}
}

func TestRetryDelay_ExponentialFullJitterWithinBounds(t *testing.T) {
	t.Parallel()
	c := Config{BackoffBase: 30 * time.Second, BackoffMax: 12 * time.Hour}
	top := func(n int64) int64 { return n - 1 }
	bottom := func(int64) int64 { return 0 }
	for _, tc := range []struct {
		attempt int
		max     time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {11, 512 * time.Minute}, {12, 12 * time.Hour}, {40, 12 * time.Hour}} {
		if got := c.retryDelay(tc.attempt, 0, top); got != tc.max {
			t.Errorf("attempt %d: largest delay %s, want %s", tc.attempt, got, tc.max)
		}
		if got := c.retryDelay(tc.attempt, 0, bottom); got != time.Second {
			t.Errorf("attempt %d: smallest delay %s, want 1s", tc.attempt, got)
		}
	}
	// Retry-After wins when it asks for longer.
	if got := c.retryDelay(1, 2*time.Hour, top); got != 2*time.Hour {
		t.Errorf("with Retry-After 2h: %s", got)
	}
	// The real jitter stays in bounds.
	for range 1000 {
		if d := c.retryDelay(3, 0, jitter); d < time.Second || d > 2*time.Minute {
			t.Fatalf("jittered delay %s outside [1s, 2m]", d)
		}
	}
	// The default schedule spans about three days at most.
	total := time.Duration(0)
	for attempt := 1; attempt < 16; attempt++ {
		total += c.retryDelay(attempt, 0, top)
	}
	if total < 60*time.Hour || total > 72*time.Hour {
		t.Errorf("worst-case horizon %s", total)
	}
}

func TestParseRetryAfter_SecondsOrDateCapped(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":             0,
		"120":          2 * time.Minute,
		" 7 ":          7 * time.Second,
		"-3":           0,
		"soon":         0,
		"999999999999": maxRetryAfter,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
		now.Add(72 * time.Hour).Format(http.TimeFormat):   maxRetryAfter,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

func TestStorable_KeepsTextColumnsHappy(t *testing.T) {
	t.Parallel()
	if got := storable([]byte("ok\x00\xff\xfe done")); got != "ok done" {
		t.Fatalf("storable = %q", got)
	}
	// A multi-byte character cut by the truncation is dropped, not stored broken.
	if got := storable([]byte("é")[:1]); got != "" {
		t.Fatalf("storable(cut rune) = %q", got)
	}
}

// The server's log and the attempt's span get the whole error but the URL: a webhook URL's path or
// query may hold the receiver's secret.
func TestOutcome_LoggedLeavesOutTheURL(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	err := &url.Error{Op: "Post", URL: "https://hooks.example.com/services/T0/B0/s3cret?token=x", Err: refused}
	o := outcome{err: storedError(err), detail: withoutURL(err)}
	if got := o.logged(); got != "Post: dial tcp: connect: connection refused" {
		t.Fatalf("logged() = %q", got)
	}
	if got := (outcome{err: "HTTP 500: unexpected status"}).logged(); got != "HTTP 500: unexpected status" {
		t.Fatalf("logged() of an answer = %q", got)
	}
}

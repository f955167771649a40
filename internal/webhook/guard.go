package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// BlockedAddressError is the SSRF guard's refusal of an address; the dial error of the attempt wraps it.
type BlockedAddressError struct {
	Addr   netip.Addr
	Reason string // "loopback", "private", "link-local", ...
}

func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("SSRF guard: refusing to connect to %s (%s address; WEBHOOK_ALLOW_PRIVATE_TARGETS=true allows it)",
		e.Addr, e.Reason)
}

// blockedPrefixes are the special-purpose ranges netip has no predicate for.
var blockedPrefixes = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // includes the broadcast address
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // IPv4 in the last 32 bits
	sixToFour = netip.MustParsePrefix("2002::/16")    // IPv4 in bits 16..47
)

// blockedReason says why ip must not be a webhook target, or "" when it may be. IPv4 addresses hidden in
// IPv6 (mapped, NAT64, 6to4) are judged as the IPv4 address they reach.
func blockedReason(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate(): // 10/8, 172.16/12, 192.168/16, fc00::/7
		return "private"
	case ip.IsLinkLocalUnicast(): // 169.254/16 (cloud metadata), fe80::/10
		return "link-local"
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, p := range blockedPrefixes {
		if p.prefix.Contains(ip) {
			return p.reason
		}
	}
	if b := ip.As16(); nat64.Contains(ip) {
		return blockedReason(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	} else if sixToFour.Contains(ip) {
		return blockedReason(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
	}
	return ""
}

// dialControl runs after DNS resolution, on the very address being dialled, so a hostname that resolves
// (or re-resolves, DNS rebinding) to an internal address is refused.
func dialControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("SSRF guard: %w", err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("SSRF guard: %w", err)
	}
	if reason := blockedReason(ip); reason != "" {
		return &BlockedAddressError{Addr: ip.Unmap(), Reason: reason}
	}
	return nil
}

// URLError is a webhook URL refused when it is saved; its message is the original API's.
type URLError struct{ Message string }

func (e *URLError) Error() string { return e.Message }

// CheckURL validates a webhook URL when it is saved: http(s) with a host, https only when httpsOnly and,
// unless allowPrivate, not localhost or an internal IP literal. It is a courtesy to the admin: the dialer
// checks the address actually dialled again at every attempt, because DNS can change after saving.
func CheckURL(raw string, httpsOnly, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
		return &URLError{"Invalid webhook URL: URL is malformed or cannot be parsed"}
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case httpsOnly && scheme != "https":
		return &URLError{"Invalid webhook URL: Only HTTPS URLs are permitted (received protocol: " + scheme + ":)"}
	case scheme != "https" && scheme != "http":
		return &URLError{"Invalid webhook URL: Only HTTP(S) URLs are permitted (received protocol: " + scheme + ":)"}
	}
	if allowPrivate {
		return nil
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	internal := host == "localhost" || strings.HasSuffix(host, ".localhost")
	if ip, err := netip.ParseAddr(host); err == nil && blockedReason(ip) != "" {
		internal = true
	}
	if internal {
		return &URLError{"Invalid webhook URL: Loopback, private, and link-local addresses are not permitted"}
	}
	return nil
}

// isBlocked reports whether err is (or wraps) a refusal of the SSRF guard.
func isBlocked(err error) bool {
	var b *BlockedAddressError
	return errors.As(err, &b)
}

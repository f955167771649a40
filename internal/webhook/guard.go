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

// errTargetNotAllowed is all the delivery log (and so the API) says about a target the guard refused. The
// refusal names the address a hostname resolved to, and telling an admin that would answer DNS questions
// about the internal network; the server's log line of the attempt keeps the detail.
const errTargetNotAllowed = "target not allowed"

// BlockedAddressError is the SSRF guard's refusal of an address; the dial error of the attempt wraps it.
// Its message names the address, so it belongs in the server's log only.
type BlockedAddressError struct {
	Addr   netip.Addr
	Reason string // "loopback", "private", "link-local", "multicast", "Teredo", ...
}

func (e *BlockedAddressError) Error() string {
	hint := ""
	if blockedReason(e.Addr, true) == "" {
		hint = "; WEBHOOK_ALLOW_PRIVATE_TARGETS=true allows it"
	}
	return fmt.Sprintf("SSRF guard: refusing to connect to %s (%s address%s)", e.Addr, e.Reason, hint)
}

// blockedPrefixes are the special-purpose ranges netip has no predicate for (IANA's special-purpose address
// registries: not globally reachable, or a tunnel or translation to an address that cannot be judged here).
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
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},            // includes the broadcast address
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},           // RFC 4291, deprecated; :: and ::1 are judged before
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated"}, // RFC 2765 (SIIT); not ::ffff:0:0/96, the mapped range
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},  // RFC 8215: the network decides where the IPv4 part sits
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"}, // the IPv4 address reached is obfuscated in the last 32 bits
	{netip.MustParsePrefix("2001:2::/48"), "benchmarking"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // IPv4 in the last 32 bits
	sixToFour = netip.MustParsePrefix("2002::/16")    // IPv4 in bits 16..47
	// globalUnicast6 is the only block IANA assigns IPv6 global unicast addresses from; the rest of the
	// space is reserved (and netip counts it as global unicast).
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
)

// blockedReason says why ip must not be a webhook target, or "" when it may be. IPv4 addresses hidden in
// IPv6 (mapped, NAT64, 6to4) are judged as the IPv4 address they reach.
//
// allowPrivate (WEBHOOK_ALLOW_PRIVATE_TARGETS) lets loopback, private and link-local unicast addresses
// through and nothing else: that is where a test's or a developer's receiver runs (this host, a container
// network, the LAN). It does not open the rest, not even on a development machine: multicast, unspecified
// and broadcast addresses are never a receiver (0.0.0.0 would reach this host by another name), and the
// reserved, tunnel and translation ranges (IPv4-compatible, IPv4-translated, local-use NAT64, Teredo) lead to
// an address that is not the one judged here.
func blockedReason(ip netip.Addr, allowPrivate bool) string {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return "invalid"
	}
	if reason := privateReason(ip); reason != "" {
		if allowPrivate {
			return ""
		}
		return reason
	}
	switch {
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast(): // every scope: interface-local, link-local, ... global
		return "multicast"
	}
	for _, p := range blockedPrefixes {
		if p.prefix.Contains(ip) {
			return p.reason
		}
	}
	if b := ip.As16(); nat64.Contains(ip) {
		return blockedReason(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), allowPrivate)
	} else if sixToFour.Contains(ip) {
		return blockedReason(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), allowPrivate)
	}
	switch {
	case !ip.IsGlobalUnicast(): // the rule; every case netip knows of today is named above
		return "not global unicast"
	case ip.Is6() && !globalUnicast6.Contains(ip):
		return "reserved"
	}
	return ""
}

// privateReason names the kinds of address WEBHOOK_ALLOW_PRIVATE_TARGETS allows, or returns "" for any
// other address. ip is unmapped.
func privateReason(ip netip.Addr) string {
	switch {
	case ip.IsLoopback(): // 127/8, ::1
		return "loopback"
	case ip.IsPrivate(): // 10/8, 172.16/12, 192.168/16, fc00::/7
		return "private"
	case ip.IsLinkLocalUnicast(): // 169.254/16 (cloud metadata), fe80::/10
		return "link-local"
	}
	return ""
}

// guard is the dialer's Control function: it runs after DNS resolution, on the very address being dialled,
// so a hostname that resolves (or re-resolves, DNS rebinding) to a refused address is refused. It returns
// a *BlockedAddressError for a refused address.
func guard(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("SSRF guard: %w", err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("SSRF guard: %w", err)
		}
		if reason := blockedReason(ip, allowPrivate); reason != "" {
			return &BlockedAddressError{Addr: ip.Unmap(), Reason: reason}
		}
		return nil
	}
}

// URLError is a webhook URL refused when it is saved; its message is the original API's.
type URLError struct{ Message string }

func (e *URLError) Error() string { return e.Message }

// CheckURL validates a webhook URL when it is saved: http(s) with a host, https only when httpsOnly, not an
// IP literal the dialer would refuse and, unless allowPrivate, not localhost. It is a courtesy to the admin:
// the dialer checks the address actually dialled again at every attempt, because DNS can change after
// saving. It never resolves the host, so its messages (fixed texts and the scheme as typed) cannot tell
// what a name resolves to.
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
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	refused := !allowPrivate && (host == "localhost" || strings.HasSuffix(host, ".localhost"))
	if ip, err := netip.ParseAddr(host); err == nil && blockedReason(ip, allowPrivate) != "" {
		refused = true
	}
	switch {
	case !refused:
		return nil
	case allowPrivate:
		return &URLError{"Invalid webhook URL: Multicast, reserved and other special-purpose addresses are not permitted"}
	default:
		return &URLError{"Invalid webhook URL: Loopback, private, and link-local addresses are not permitted"}
	}
}

// isBlocked reports whether err is (or wraps) a refusal of the SSRF guard.
func isBlocked(err error) bool {
	var b *BlockedAddressError
	return errors.As(err, &b)
}

package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// fromTrustedProxy reports whether the request's connection comes from a TRUSTED_PROXIES address, whose
// forwarding headers (X-Forwarded-For, -Proto, -Host) are then believed. A client's own headers never are.
func (s *Server) fromTrustedProxy(r *http.Request) bool {
	return s.trusted(remoteAddr(r))
}

func (s *Server) trusted(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address of the request's client: the connection's, or behind trusted proxies the
// last X-Forwarded-For hop that is not one of them (the hops before it are the client's to write).
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	a := remoteAddr(r)
	if !s.trusted(a) {
		return a
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return a // a malformed hop: believe nothing before it
		}
		a = h.Unmap()
		if !s.trusted(a) {
			return a
		}
	}
	return a
}

// clientKey is the client's address for per-client limits: an IPv6 client is its /64 (one subscriber's
// network), an IPv4 client its address.
func (s *Server) clientKey(r *http.Request) string {
	a := s.clientAddr(r)
	if !a.IsValid() {
		return r.RemoteAddr
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

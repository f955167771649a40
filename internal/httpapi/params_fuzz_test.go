package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The pure readers of a request, fuzzed on their own (FuzzQueryParams reaches them only through the
// document's validation, one route at a time).

// FuzzTimeRange: timeRange answers a 400 *Error or a range; a bound given is the instant it names, a bound
// left out is the default (now, or defaultDays before it), and two bounds given are in order.
func FuzzTimeRange(f *testing.F) {
	for _, c := range [][2]string{
		{"", ""}, {"2026-03-01T00:00:00Z", "2026-03-31T23:59:59.999+05:30"}, {"2026-03-31T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"2026-03-01", ""}, {"2026-03-01T00:00:00", ""}, {"", "2026-13-01T00:00:00Z"}, {"0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999-23:59"},
		{"2026-03-01T00:00:00+24:00", ""}, {"2026-03-01T00:00:00.Z", ""}, {"2026-03-01t00:00:00z", ""}, {" 2026-03-01T00:00:00Z", ""},
		{"2026-02-29T00:00:00Z", "2028-02-29T00:00:00Z"}, {"2026-03-01T24:00:00Z", ""},
	} {
		for _, days := range []uint8{0, 30, 90} {
			f.Add(c[0], c[1], days)
		}
	}
	f.Fuzz(func(t *testing.T, from, to string, days uint8) {
		q := url.Values{}
		if from != "" {
			q.Set("from", from)
		}
		if to != "" {
			q.Set("to", to)
		}
		r := httptest.NewRequest("GET", "/admin/org-summary?"+q.Encode(), nil)
		before := time.Now()
		gotFrom, gotTo, err := timeRange(r, int(days))
		if err != nil {
			expect4xx(t, r, "timeRange", err)
			return
		}
		check := func(name, given string, got *time.Time, def time.Time) {
			switch {
			case given != "":
				want, err := time.Parse(time.RFC3339Nano, given)
				if err != nil || got == nil || !got.Equal(want) {
					t.Fatalf("%s=%q read as %v (%v)", name, given, got, err)
				}
			case days == 0 && got != nil:
				t.Fatalf("%s left out with no default read as %v", name, got)
			case days > 0 && (got == nil || got.Before(def.Add(-time.Second)) || got.After(time.Now().AddDate(0, 0, 0))):
				t.Fatalf("%s left out read as %v, want about %v", name, got, def)
			}
		}
		check("from", from, gotFrom, before.AddDate(0, 0, -int(days)))
		check("to", to, gotTo, before)
		if from != "" && to != "" && gotFrom.After(*gotTo) {
			t.Fatalf("from %v after to %v accepted", gotFrom, gotTo)
		}
	})
}

// FuzzLastEventID: the resume position is the Last-Event-ID header's, else ?last_event_id=: an opaque
// id of this organization's stream answers its position; anything else (another organization's id, an
// old numeric id, garbage) is an unknown position, never a panic.
func FuzzLastEventID(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	org, other := uuid.MustParse("11111111-1111-1111-1111-111111111111"), uuid.MustParse("22222222-2222-2222-2222-222222222222")
	ids, err := newStreamIDs(key, org)
	if err != nil {
		f.Fatal(err)
	}
	theirs, err := newStreamIDs(key, other)
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range [][2]string{
		{"", ""}, {"42", ""}, {"", "42"}, {ids.id(7), ""}, {"", ids.id(9)}, {theirs.id(7), ""}, {ids.id(7) + "=", ""},
		{"-1", ""}, {"", "%zz"}, {"４２", ""}, {strings.Repeat("A", 22), ""},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, header, query string) {
		r := httptest.NewRequest("GET", eventsPath, nil)
		r.URL.RawQuery = url.Values{"last_event_id": {query}}.Encode()
		if header != "" {
			r.Header.Set("Last-Event-ID", header)
		}
		pos, known, has := lastEventID(r, ids)
		v := header
		if v == "" {
			v = query
		}
		switch {
		case v == "" && (has || known):
			t.Fatalf("no id read as %d (known %v)", pos, known)
		case known && ids.id(pos) != v:
			t.Fatalf("%q read as position %d, whose id is %q", v, pos, ids.id(pos))
		case known && theirs.id(pos) == v:
			t.Fatalf("another organization's id %q accepted", v)
		}
	})
}

// FuzzExpenseAmount: cents takes a JSON number (what the document let through) and answers a 400 *Error
// naming amount, or a positive amount with at most two decimals whose text is that number with exactly
// two, and whose float is the nearest to it.
func FuzzExpenseAmount(f *testing.F) {
	for _, s := range []string{"12.5", "0.01", "0.001", "1E+2", "1e-2", "100.00", "9999999999.99", "0", "-0", "-12.5",
		"12.345", "0.10", "1.999e2", "123456789012345678901234567890.12", "1e-1000", "5e-324", "1.7976931348623157e308"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var n json.Number
		if json.Unmarshal([]byte(s), &n) != nil || strings.ContainsAny(s, `"`) {
			return // not a JSON number: decodeBody refuses it first
		}
		s = n.String() // the literal alone, as decodeBody hands it over
		if e := exponent(s); e > 400 || e < -400 {
			return // the document caps amount at 9999999999.99 (a float64): such a number never gets here
		}
		a, err := cents(n)
		v, _ := new(big.Rat).SetString(s)
		if err != nil {
			expect4xx(t, httptest.NewRequest("POST", "/expenses", nil), "cents", err)
			if v.Sign() > 0 && new(big.Rat).Mul(v, big.NewRat(100, 1)).IsInt() {
				t.Fatalf("%s refused: %v", s, err)
			}
			return
		}
		text, ok := new(big.Rat).SetString(a.text)
		if !ok || text.Cmp(v) != 0 || v.Sign() <= 0 || !strings.Contains(a.text, ".") || len(a.text)-strings.Index(a.text, ".") != 3 {
			t.Fatalf("%s accepted as %q", s, a.text)
		}
		if want, _ := v.Float64(); a.float != want {
			t.Fatalf("%s accepted as %v, want %v", s, a.float, want)
		}
	})
}

// exponent is the decimal exponent written in a number literal (0 without one).
func exponent(s string) int {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
	if err != nil {
		return math.MaxInt32
	}
	return n
}

// FuzzReceiptURL: receiptOf answers a 400 *Error naming receipt_url, this server's canonical URL of one of
// its receipts, or an https URL stored as given.
func FuzzReceiptURL(f *testing.F) {
	const base = "https://api.fieldtrack.test"
	for _, s := range []string{
		base + "/receipts/" + fuzzID, "http://api.fieldtrack.test/receipts/" + fuzzID, "https://API.FIELDTRACK.TEST/receipts/" + strings.ToUpper(fuzzID),
		base + "/receipts/" + fuzzID + "?download=1", base + "/receipts/" + fuzzID + "#x", base + "/receipts/../receipts/" + fuzzID,
		"https://user:pw@api.fieldtrack.test/receipts/" + fuzzID, "https://api.fieldtrack.test:443/receipts/" + fuzzID,
		"https://cdn.example.com/r/1.jpg", "http://cdn.example.com/r/1.jpg", "javascript:alert(1)", "//cdn.example.com/x", "https://",
		"https://[::1]:8443/receipts/" + fuzzID, "https://api.fieldtrack.test/receipts/%33f1c2a9e-8b7d-4e6f-a5c4-1b2d3e4f5a6b", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, stored, err := receiptOf(raw, base)
		switch {
		case err != nil:
			expect4xx(t, httptest.NewRequest("POST", "/expenses", nil), "receiptOf", err)
		case id != nil:
			if stored != base+"/receipts/"+id.String() {
				t.Fatalf("%q names receipt %s, stored as %q", raw, id, stored)
			}
		default:
			u, perr := url.Parse(raw)
			if perr != nil || u.Scheme != "https" || u.Host == "" || stored != raw {
				t.Fatalf("%q stored as %q", raw, stored)
			}
		}
	})
}

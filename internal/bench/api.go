package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// newHTTPClient keeps one connection per worker alive between requests and never uses a proxy.
func newHTTPClient(workers int) *http.Client {
	return &http.Client{
		Timeout: grace,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        2 * workers,
			MaxIdleConnsPerHost: 2 * workers,
			IdleConnTimeout:     2 * time.Minute,
			DisableCompression:  true,
		},
	}
}

// maxBody caps how much of a response is read.
const maxBody = 1 << 20

// post sends body as JSON with m's token and returns the status and the response body.
func post(ctx context.Context, hc *http.Client, url, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, b, err
}

// httpError is a non-2xx answer; its text carries the body, which the report prints.
func httpError(status int, body []byte) error {
	return fmt.Errorf("HTTP %d: %s", status, bytes.TrimSpace(body))
}

// apiSingle is phase B1: POST /locations, one fix per request. 201 inserted it; 200 means it was
// already stored (never expected here: fixes are unique).
func apiSingle(hc *http.Client, base string, f *fleet, workers int) phase {
	url := base + "/locations"
	return phase{id: "B1", path: "`POST /locations`, 1 fix/request", api: true, batch: 1,
		newWorker: func(w int) work {
			var buf []byte
			return f.roundRobin(w, workers, func(ctx context.Context, m *member) (int, bool, error) {
				fx, err := m.nextFix(time.Now())
				if err != nil {
					return 0, false, err
				}
				buf = append(buf[:0], `{"session_id":"`...)
				buf = append(buf, m.sessionID.String()...)
				buf = append(buf, `",`...)
				buf = appendPointFields(buf, fx)
				buf = append(buf, '}')
				status, body, err := post(ctx, hc, url, m.token, buf)
				switch {
				case err != nil:
					return 0, false, err
				case status == http.StatusCreated:
					return 1, false, nil
				case status == http.StatusOK:
					return 0, true, nil
				}
				return 0, false, httpError(status, body)
			})
		}}
}

// apiBatch is phase B2: POST /locations/batch with BatchSize fixes of one session per request.
func apiBatch(hc *http.Client, base string, f *fleet, workers int) phase {
	url := base + "/locations/batch"
	return phase{id: "B2", path: "`POST /locations/batch`, 100 fixes/request", api: true, batch: BatchSize,
		newWorker: func(w int) work {
			var buf []byte
			return f.roundRobin(w, workers, func(ctx context.Context, m *member) (int, bool, error) {
				buf = append(buf[:0], `{"session_id":"`...)
				buf = append(buf, m.sessionID.String()...)
				buf = append(buf, `","points":[`...)
				now := time.Now()
				for k := range BatchSize {
					fx, err := m.nextFix(now)
					if err != nil {
						return 0, false, err
					}
					if k > 0 {
						buf = append(buf, ',')
					}
					buf = append(buf, '{')
					buf = appendPointFields(buf, fx)
					buf = append(buf, '}')
				}
				buf = append(buf, "]}"...)
				status, body, err := post(ctx, hc, url, m.token, buf)
				if err != nil {
					return 0, false, err
				}
				if status != http.StatusCreated {
					return 0, false, httpError(status, body)
				}
				var answer struct {
					Inserted *int `json:"inserted"`
				}
				if err := json.Unmarshal(body, &answer); err != nil || answer.Inserted == nil {
					return 0, false, fmt.Errorf("HTTP %d without an inserted count: %s", status, body)
				}
				return *answer.Inserted, *answer.Inserted < BatchSize, nil
			})
		}}
}

// appendPointFields appends a fix's JSON members (no braces), as phones send them.
func appendPointFields(b []byte, fx fix) []byte {
	b = append(b, `"latitude":`...)
	b = strconv.AppendFloat(b, fx.lat, 'f', 6, 64)
	b = append(b, `,"longitude":`...)
	b = strconv.AppendFloat(b, fx.lon, 'f', 6, 64)
	b = append(b, `,"accuracy":`...)
	b = strconv.AppendFloat(b, fx.accuracy, 'f', -1, 64)
	b = append(b, `,"recorded_at":"`...)
	b = fx.recordedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","sequence_number":`...)
	b = strconv.AppendInt(b, int64(fx.seq), 10)
	return b
}

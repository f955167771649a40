package bench

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// receiver is the webhook endpoint: it records the first attempt per webhook-id and answers 200 at once.
type receiver struct {
	srv   *http.Server
	url   string
	https bool
}

func startReceiver(tr *tracker, certFile, keyFile string) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := tr.now()
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
		var env struct {
			Data struct {
				Seq *int64 `json:"seq"`
			} `json:"data"`
		}
		seq := int64(-1)
		if json.Unmarshal(body, &env) == nil && env.Data.Seq != nil {
			seq = *env.Data.Seq
		}
		tr.sawHook(r.Header.Get("webhook-id"), seq, at)
		w.WriteHeader(http.StatusOK)
	})
	rc := &receiver{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	if certFile == "" {
		rc.url = "http://" + ln.Addr().String() + "/ftbench/webhook"
		go func() { _ = rc.srv.Serve(ln) }()
		return rc, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("receiver certificate: %w", err)
	}
	rc.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	rc.url, rc.https = "https://"+ln.Addr().String()+"/ftbench/webhook", true
	go func() { _ = rc.srv.ServeTLS(ln, "", "") }()
	return rc, nil
}

func (rc *receiver) close() { _ = rc.srv.Close() }

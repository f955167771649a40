package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The server under test runs with APP_ENV=production, where the webhook worker refuses http:// targets
// (webhook.Config.HTTPSOnly). So the receiver of the events section speaks https with a self-signed
// certificate for 127.0.0.1, and scripts/bench.sh starts the server with SSL_CERT_FILE pointing at that
// certificate: Go's crypto/x509 then trusts it (alongside the system's certificate directories) in that
// process only. The certificate is a leaf, not a CA, so it cannot vouch for anything else, and it expires
// after a day.

// Names of the files WriteReceiverCert writes.
const (
	ReceiverCertFile = "receiver-cert.pem"
	ReceiverKeyFile  = "receiver-key.pem"
)

// receiverCertTTL outlives any run Config.Validate allows.
const receiverCertTTL = 24 * time.Hour

// WriteReceiverCert creates dir (mode 0700) and writes a fresh self-signed certificate for 127.0.0.1 and
// its private key (mode 0600) into it. It returns the two paths.
func WriteReceiverCert(dir string) (certPath, keyPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ftbench webhook receiver"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(receiverCertTTL),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true, // and IsCA false: a leaf only
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("receiver certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(dir, ReceiverCertFile), filepath.Join(dir, ReceiverKeyFile)
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

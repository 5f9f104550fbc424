package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
)

// certStore holds the certificate new TLS handshakes get. SIGHUP reloads
// it from -cert and -key; sessions already open keep the connection they
// have, whatever their certificate. It is safe for concurrent use.
type certStore struct {
	certFile, keyFile string // "" for the self-signed certificate
	cur               atomic.Pointer[tls.Certificate]
	log               *slog.Logger
	m                 *metrics // nil without -metrics
}

// load reads the files into a new certificate; on error the one in use
// stays.
func (c *certStore) load() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("-cert/-key: %w", err)
	}
	c.set(&cert)
	return nil
}

// set makes cert the one new handshakes get.
func (c *certStore) set(cert *tls.Certificate) {
	if cert.Leaf == nil && len(cert.Certificate) > 0 {
		cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	}
	c.cur.Store(cert)
	if c.m != nil && cert.Leaf != nil {
		c.m.certExpiry.Set(float64(cert.Leaf.NotAfter.Unix()))
	}
}

// getCertificate is tls.Config.GetCertificate.
func (c *certStore) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// describe returns log attributes naming the certificate in use.
func (c *certStore) describe() []any {
	cert := c.cur.Load()
	attrs := []any{"sha256", fingerprint(cert.Certificate[0])}
	if l := cert.Leaf; l != nil {
		names := l.DNSNames
		for _, ip := range l.IPAddresses {
			names = append(names, ip.String())
		}
		attrs = append(attrs, "subject", l.Subject.CommonName, "names", strings.Join(names, ","),
			"not_after", l.NotAfter.UTC().Format(time.RFC3339))
	}
	return attrs
}

// reload is SIGHUP's work for the certificate: read the files again, and
// on failure keep the certificate in use and say why.
func (c *certStore) reload() {
	if c.certFile == "" {
		c.log.Info("SIGHUP: no -cert/-key to reload; the self-signed certificate stays")
		return
	}
	if err := c.load(); err != nil {
		c.log.Error("SIGHUP: certificate reload failed; the certificate in use stays", "err", err)
		if c.m != nil {
			c.m.certReloads.WithLabelValues("failure").Inc()
		}
		return
	}
	c.log.Info("SIGHUP: certificate reloaded; new handshakes get it, open sessions go on", c.describe()...)
	if c.m != nil {
		c.m.certReloads.WithLabelValues("success").Inc()
	}
}

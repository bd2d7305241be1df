// A Go HTTPS server and client for tapwire's Go crypto/tls uprobe tests (issue 17). Standard
// library only, so it builds offline with Go 1.19 (Debian's golang-go) and the current Go alike.
//
//	gotls server -listen 127.0.0.1:0 [-h2]
//	    prints "listening <port>" once up; the certificate is self-signed and made at start.
//	    GET /<anything> answers 200 with `{"path":"<path>"}`.
//	gotls client -url https://127.0.0.1:<port>/x [-n 1] [-h2] [-close]
//	    N keep-alive requests on one connection; prints "status <code> <body>" for the last
//	    and "elapsed_ns <total>" for all of them. -close shuts the idle connection (tls.Conn.Close)
//	    before exiting; -hold waits for stdin to close first (a process to kill while a session is open).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gotls server|client ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "client":
		client(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: gotls server|client ...")
		os.Exit(2)
	}
}

func selfSigned() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func server(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address")
	h2 := fs.Bool("h2", false, "offer h2 through ALPN")
	must(fs.Parse(args))
	protos := []string{"http/1.1"}
	if *h2 {
		protos = []string{"h2", "http/1.1"}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned()}, NextProtos: protos}
	ln, err := tls.Listen("tcp", *listen, cfg)
	must(err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := fmt.Sprintf("{\"path\":%q}\n", r.URL.Path)
		w.Header().Set("content-type", "application/json")
		w.Header().Set("content-length", fmt.Sprint(len(body)))
		_, _ = io.WriteString(w, body)
	})}
	if !*h2 {
		// An empty, non-nil map turns HTTP/2 off (net/http docs).
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	fmt.Printf("listening %d\n", ln.Addr().(*net.TCPAddr).Port)
	must(srv.Serve(ln))
}

func client(args []string) {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	url := fs.String("url", "", "https URL")
	n := fs.Int("n", 1, "requests")
	h2 := fs.Bool("h2", false, "ask for h2 through ALPN")
	closeIdle := fs.Bool("close", false, "close the connection before exiting")
	hold := fs.Bool("hold", false, "wait for stdin to close before exiting")
	must(fs.Parse(args))
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: *h2,
	}
	if !*h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	c := &http.Client{Transport: tr}
	start := time.Now()
	status, body := 0, ""
	for i := 0; i < *n; i++ {
		resp, err := c.Get(*url)
		must(err)
		b, err := io.ReadAll(resp.Body)
		must(err)
		must(resp.Body.Close())
		status, body = resp.StatusCode, string(b)
	}
	elapsed := time.Since(start)
	fmt.Printf("status %d %s", status, body)
	fmt.Printf("proto %s\n", map[bool]string{true: "h2", false: "http/1.1"}[*h2])
	fmt.Printf("elapsed_ns %d\n", elapsed.Nanoseconds())
	if *hold {
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	if *closeIdle {
		tr.CloseIdleConnections()
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

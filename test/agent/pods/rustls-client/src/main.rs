//! An HTTPS client whose TLS is rustls: the uprobes cannot read it (test/agent/tls-unprobed.test.ts).
//! Usage: rustls-client <ca.pem> <server name> <ip:port> <path>; prints the response's status line.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&args[1]).expect("ca file");
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(args[2].clone()).expect("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let sock = TcpStream::connect(&args[3]).expect("connect");
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write!(tls, "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", args[4], args[2]).expect("write");
    let mut out = Vec::new();
    // A server that closes without close_notify ends the read with an error after the data.
    let _ = tls.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    println!("{}", text.lines().next().unwrap_or(""));
}

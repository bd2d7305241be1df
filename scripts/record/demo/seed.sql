-- Seed data for the demo stories. Loaded through the Unix socket before the capture starts,
-- so none of this is in demo.pcap / demo-fixed.pcap.
CREATE TABLE orders (
  id       integer PRIMARY KEY,
  customer text    NOT NULL,
  total    numeric(10, 2) NOT NULL,
  status   text    NOT NULL
);
INSERT INTO orders (id, customer, total, status) VALUES
  (40, 'carol', 12.00, 'shipped'),
  (41, 'dave',  250.10, 'delivered'),
  (42, 'alice', 99.50, 'pending'),
  (43, 'bob',   18.75, 'pending');

-- The psql session of pcaps/postgres/psql.pcap, fed to `psql -X -f -` (every ';' ends one Query message,
-- '\;' joins statements into one Query).
SELECT id, customer, total FROM orders WHERE id <= 3 ORDER BY id;
SELECT count(*) AS orders, sum(total) AS revenue FROM orders WHERE id <= 20;
-- one Query message holding three statements: three results, one ReadyForQuery
SELECT 1 AS one \; SELECT 'two' AS two \; UPDATE stock SET qty = qty + 1 WHERE sku = 'A-100';
-- an error, then the session goes on
SELECT 1 / 0 AS boom;
SELECT sku, qty FROM stock ORDER BY sku;
-- COPY FROM STDIN: CopyInResponse, CopyData (the rows below), CopyDone
COPY stock (sku, qty, price) FROM STDIN WITH (FORMAT csv);
D-400,7,12.00
E-500,3,99.95
F-600,21,0.50
G-700,1,149.00
\.
-- COPY TO STDOUT: CopyOutResponse, one CopyData per row, CopyDone
COPY (SELECT sku, qty, price FROM stock ORDER BY sku) TO STDOUT WITH (FORMAT csv, HEADER);
-- an empty query: EmptyQueryResponse
;
-- a NoticeResponse
DROP TABLE IF EXISTS nonexistent;

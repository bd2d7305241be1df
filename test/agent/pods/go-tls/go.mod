module tapwire.test/gotls

go 1.19

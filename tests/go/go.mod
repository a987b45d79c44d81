module goway.tests/go

go 1.19

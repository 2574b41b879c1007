-- Every full-text and symbol search scans its GIN index's whole pending list
-- (recent inserts not yet merged). At the default 4 MB that cost ~6 ms a
-- search after a bulk index of 1M chunks; 512 kB bounds it, and the merges
-- it triggers are smaller, not more expensive in total.
ALTER INDEX code_chunks_tsv SET (gin_pending_list_limit = 512);
ALTER INDEX code_chunks_symbol_trgm SET (gin_pending_list_limit = 512);

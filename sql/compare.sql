-- One row per compared spotter and protocol: STR figures of its cross-validated spot run, from `metrics`.
-- $compare_id: the compare run.
SELECT c.dataset, c.kind, c.model, m.protocol,
       CAST(max(m.value) FILTER (WHERE m.name = 'spot_tp') AS BIGINT) AS tp,
       CAST(max(m.value) FILTER (WHERE m.name = 'spot_fp') AS BIGINT) AS fp,
       CAST(max(m.value) FILTER (WHERE m.name = 'spot_fn') AS BIGINT) AS fn,
       max(m.value) FILTER (WHERE m.name = 'spot_f1') AS spot_f1,
       max(m.value) FILTER (WHERE m.name = 'analysis_f1') AS analysis_f1,
       max(m.value) FILTER (WHERE m.name = 'strs') AS strs,
       any_value(c.train_s) AS train_s, any_value(c.spot_s) AS spot_s, any_value(c.spot_run_id) AS spot_run_id
FROM comparisons c
JOIN metrics m ON m.run_id = c.spot_run_id AND m.dataset = c.dataset
WHERE c.compare_id = $compare_id
GROUP BY c.dataset, c.kind, c.model, m.protocol
ORDER BY c.dataset, m.protocol, strs DESC NULLS LAST, c.kind

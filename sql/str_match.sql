-- STR spotting match under both protocols, for every (scope, protocol) listed in jobs_in.
-- Inputs (registered relations):
--   pred_in(scope, subject, video, onset, offset, emotion, rn)          rn = file order, unique
--   gt_in(scope, subject, video, onset, offset, emotion, rn, gt_id)     rn = file order, unique
--   jobs_in(job, scope, protocol, classes)
-- A scope is one independent scoring input (e.g. a dataset, or the pooled "overall").
-- IoU counts frames inclusively; a pair is a candidate when IoU >= 0.5, tested exactly as
-- 2 * intersection >= union on integers.
--
-- megc2025 (the official STRS scorer): subjects come from the predictions and videos from those
-- subjects' GT rows, so predictions on other videos are ignored and subjects without predictions
-- add no FN. Predictions are visited in file order and each takes EVERY free GT row it overlaps
-- enough, which is the same as: each GT row goes to the earliest candidate prediction. A candidate
-- pair always lies in a GT video of a predicted subject, so the subject filter only shapes FP/FN.
--
-- strict: one-to-one greedy matching over every prediction and GT row. Per (subject, video),
-- predictions with a candidate are visited in file order; each takes the free GT row with the
-- highest IoU (ties: earliest GT row). The sequential walk is a recursive CTE carrying the list of
-- GT rows already taken.
--
-- Output: one row per TP pair, FP prediction and FN GT row, tagged with scope and protocol.
WITH RECURSIVE
official_scopes AS (SELECT DISTINCT scope FROM jobs_in WHERE protocol = 'megc2025'),
strict_scopes AS (SELECT DISTINCT scope FROM jobs_in WHERE protocol = 'strict'),
pairs AS (
    SELECT p.scope, p.subject, p.video, p.rn AS pred_rn, g.rn AS gt_rn,
           greatest(0, least(p.offset, g.offset) - greatest(p.onset, g.onset) + 1) AS inter,
           (p.offset - p.onset + 1) + (g.offset - g.onset + 1) AS total
    FROM pred_in AS p
    JOIN gt_in AS g ON p.scope = g.scope AND p.subject = g.subject AND p.video = g.video
),
cand AS (
    SELECT scope, subject, video, pred_rn, gt_rn, inter::DOUBLE / (total - inter) AS iou
    FROM pairs WHERE inter > 0 AND 2 * inter >= total - inter
),
-- megc2025 ------------------------------------------------------------------------------------
official_gt AS (
    SELECT g.* FROM gt_in AS g
    WHERE g.scope IN (SELECT scope FROM official_scopes)
      AND EXISTS (SELECT 1 FROM pred_in AS p WHERE p.scope = g.scope AND p.subject = g.subject)
),
official_pred AS (
    SELECT p.* FROM pred_in AS p
    WHERE EXISTS (SELECT 1 FROM official_gt AS g
                  WHERE g.scope = p.scope AND g.subject = p.subject AND g.video = p.video)
),
official_tp AS (
    SELECT gt_rn, min(pred_rn) AS pred_rn FROM cand
    WHERE scope IN (SELECT scope FROM official_scopes)
    GROUP BY gt_rn
),
-- strict --------------------------------------------------------------------------------------
steps AS (
    SELECT scope, subject, video, pred_rn,
           row_number() OVER (PARTITION BY scope, subject, video ORDER BY pred_rn) AS k
    FROM (SELECT DISTINCT scope, subject, video, pred_rn FROM cand
          WHERE scope IN (SELECT scope FROM strict_scopes))
),
walk(scope, subject, video, k, pred_rn, taken, chosen) AS (
    SELECT DISTINCT scope, subject, video, 0::BIGINT, NULL::BIGINT, []::BIGINT[], NULL::BIGINT FROM steps
    UNION ALL
    SELECT w.scope, w.subject, w.video, s.k, s.pred_rn,
           CASE WHEN best.gt_rn IS NULL THEN w.taken ELSE list_append(w.taken, best.gt_rn) END,
           best.gt_rn
    FROM walk AS w
    JOIN steps AS s ON s.scope = w.scope AND s.subject = w.subject AND s.video = w.video AND s.k = w.k + 1
    LEFT JOIN LATERAL (
        SELECT c.gt_rn FROM cand AS c
        WHERE c.pred_rn = s.pred_rn AND NOT list_contains(w.taken, c.gt_rn)
        ORDER BY c.iou DESC, c.gt_rn
        LIMIT 1
    ) AS best ON true
),
strict_tp AS (SELECT pred_rn, chosen AS gt_rn FROM walk WHERE chosen IS NOT NULL),
strict_gt AS (SELECT * FROM gt_in WHERE scope IN (SELECT scope FROM strict_scopes)),
strict_pred AS (SELECT * FROM pred_in WHERE scope IN (SELECT scope FROM strict_scopes)),
-- both ----------------------------------------------------------------------------------------
tp AS (
    SELECT 'megc2025' AS protocol, pred_rn, gt_rn FROM official_tp
    UNION ALL
    SELECT 'strict', pred_rn, gt_rn FROM strict_tp
),
rows_out AS (
    SELECT g.scope, tp.protocol, g.subject, g.video, p.rn AS pred_rn, p.onset AS pred_onset,
           p.offset AS pred_offset, p.emotion AS pred_emotion, g.rn AS gt_rn, g.gt_id,
           g.onset AS gt_onset, g.offset AS gt_offset, g.emotion AS gt_emotion, c.iou, 'tp' AS outcome
    FROM tp
    JOIN cand AS c ON c.pred_rn = tp.pred_rn AND c.gt_rn = tp.gt_rn
    JOIN pred_in AS p ON p.rn = tp.pred_rn
    JOIN gt_in AS g ON g.rn = tp.gt_rn
    UNION ALL
    SELECT p.scope, 'megc2025', p.subject, p.video, p.rn, p.onset, p.offset, p.emotion,
           NULL, NULL, NULL, NULL, NULL, NULL, 'fp'
    FROM official_pred AS p WHERE p.rn NOT IN (SELECT pred_rn FROM official_tp)
    UNION ALL
    SELECT g.scope, 'megc2025', g.subject, g.video, NULL, NULL, NULL, NULL,
           g.rn, g.gt_id, g.onset, g.offset, g.emotion, NULL, 'fn'
    FROM official_gt AS g WHERE g.rn NOT IN (SELECT gt_rn FROM official_tp)
    UNION ALL
    SELECT p.scope, 'strict', p.subject, p.video, p.rn, p.onset, p.offset, p.emotion,
           NULL, NULL, NULL, NULL, NULL, NULL, 'fp'
    FROM strict_pred AS p WHERE p.rn NOT IN (SELECT pred_rn FROM strict_tp)
    UNION ALL
    SELECT g.scope, 'strict', g.subject, g.video, NULL, NULL, NULL, NULL,
           g.rn, g.gt_id, g.onset, g.offset, g.emotion, NULL, 'fn'
    FROM strict_gt AS g WHERE g.rn NOT IN (SELECT gt_rn FROM strict_tp)
)
SELECT * FROM rows_out
ORDER BY scope, protocol, coalesce(pred_rn, 9223372036854775807), gt_rn

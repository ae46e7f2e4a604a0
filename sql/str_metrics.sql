-- STR figures per job from the match table str_m (output of str_match.sql) and jobs_in
-- (job, scope, protocol, classes = the analysis class set).
-- megc2025: a class whose one-vs-rest confusion matrix over the kept TPs is not 2x2 (only one of
-- the values true/false occurs in gt == c and pred == c together) counts tp = fp = fn = 0;
-- analysis F1 is NULL when P = R = 0; "uar" is the mean per-class precision, as the official
-- scorer prints it. strict: counts as they are, uar = mean per-class recall, 0 instead of NULL.
-- P, R, UF1 and UAR average over every class of the set (absent classes count as 0). Analysis TP/FP/FN:
-- strict sums the per-class counts; megc2025 prints the official scorer's counts (see `printed`).
-- Output: one row per job with spotting and analysis figures, STRS, and the per-class figures.
WITH
jobs AS (SELECT job, scope, protocol, classes, protocol = 'megc2025' AS official FROM jobs_in),
spot AS (
    SELECT j.job,
           count(m.outcome) FILTER (WHERE m.outcome = 'tp') AS tp,
           count(m.outcome) FILTER (WHERE m.outcome = 'fp') AS fp,
           count(m.outcome) FILTER (WHERE m.outcome = 'fn') AS fn
    FROM jobs AS j LEFT JOIN str_m AS m ON m.scope = j.scope AND m.protocol = j.protocol
    GROUP BY j.job
),
spot_pr AS (
    SELECT job, tp, fp, fn,
           CASE WHEN tp + fp > 0 THEN tp::DOUBLE / (tp + fp) ELSE 0.0 END AS precision,
           CASE WHEN tp + fn > 0 THEN tp::DOUBLE / (tp + fn) ELSE 0.0 END AS recall
    FROM spot
),
spot_f AS (
    SELECT *, CASE WHEN precision + recall > 0 THEN 2 * precision * recall / (precision + recall)
                   ELSE 0.0 END AS f1
    FROM spot_pr
),
cls AS (SELECT job, official, unnest(classes) AS c FROM jobs),
kept AS (
    SELECT j.job, m.gt_emotion AS g, m.pred_emotion AS p
    FROM jobs AS j JOIN str_m AS m ON m.scope = j.scope AND m.protocol = j.protocol
    WHERE m.outcome = 'tp' AND list_contains(j.classes, m.gt_emotion)
),
counts AS (
    SELECT cls.job, cls.official, cls.c,
           count(kept.g) FILTER (WHERE kept.g = cls.c AND kept.p = cls.c) AS tp,
           count(kept.g) FILTER (WHERE kept.g <> cls.c AND kept.p = cls.c) AS fp,
           count(kept.g) FILTER (WHERE kept.g = cls.c AND kept.p <> cls.c) AS fn,
           count(kept.g) FILTER (WHERE kept.g <> cls.c AND kept.p <> cls.c) AS tn
    FROM cls LEFT JOIN kept ON kept.job = cls.job
    GROUP BY cls.job, cls.official, cls.c
),
per_class AS (
    SELECT job, official, c,
           official AND NOT (tp + fp + fn > 0 AND fp + fn + tn > 0) AS degenerate, tp, fp, fn
    FROM counts
),
per_class_pr AS (
    SELECT job, official, c,
           CASE WHEN degenerate THEN 0 ELSE tp END AS tp,
           CASE WHEN degenerate THEN 0 ELSE fp END AS fp,
           CASE WHEN degenerate THEN 0 ELSE fn END AS fn,
           CASE WHEN degenerate OR tp + fp = 0 THEN 0.0 ELSE tp::DOUBLE / (tp + fp) END AS precision,
           CASE WHEN degenerate OR tp + fn = 0 THEN 0.0 ELSE tp::DOUBLE / (tp + fn) END AS recall
    FROM per_class
),
per_class_f AS (
    SELECT *, CASE WHEN precision + recall > 0 THEN 2 * precision * recall / (precision + recall)
                   ELSE 0.0 END AS f1
    FROM per_class_pr
),
analysis AS (
    SELECT job, sum(tp) AS tp, sum(fp) AS fp, sum(fn) AS fn,
           avg(precision) AS precision, avg(recall) AS recall, avg(f1) AS uf1,
           CASE WHEN bool_and(official) THEN avg(precision) ELSE avg(recall) END AS uar,
           bool_and(official) AS official,
           list({'class': c, 'tp': tp, 'fp': fp, 'fn': fn, 'precision': precision,
                 'recall': recall, 'f1': f1} ORDER BY c) AS per_class
    FROM per_class_f
    GROUP BY job
),
-- the analysis counts the official scorer prints: correct kept TPs, and kept TPs predicted as a class of
-- the set but wrongly (printed both as FP and as FN); they feed none of the other figures
printed AS (
    SELECT j.job,
           count(k.g) FILTER (WHERE k.g = k.p AND list_contains(j.classes, k.p)) AS tp,
           count(k.g) FILTER (WHERE k.g <> k.p AND list_contains(j.classes, k.p)) AS wrong
    FROM jobs AS j LEFT JOIN kept AS k USING (job)
    GROUP BY j.job
),
figures AS (
    SELECT s.job, s.tp AS spot_tp, s.fp AS spot_fp, s.fn AS spot_fn, s.precision AS spot_precision,
           s.recall AS spot_recall, s.f1 AS spot_f1,
       CASE WHEN j.official THEN pr.tp ELSE coalesce(a.tp, 0) END AS analysis_tp,
       CASE WHEN j.official THEN pr.wrong ELSE coalesce(a.fp, 0) END AS analysis_fp,
       CASE WHEN j.official THEN pr.wrong ELSE coalesce(a.fn, 0) END AS analysis_fn,
       a.precision AS analysis_precision, a.recall AS analysis_recall,
       CASE WHEN a.precision + a.recall > 0 THEN 2 * a.precision * a.recall / (a.precision + a.recall)
            WHEN j.official THEN NULL ELSE 0.0 END AS analysis_f1,
       a.uf1 AS analysis_uf1, a.uar AS analysis_uar, a.per_class
FROM spot_f AS s JOIN jobs AS j USING (job) LEFT JOIN analysis AS a USING (job) JOIN printed AS pr USING (job)
)
SELECT *, spot_f1 * analysis_f1 AS strs FROM figures ORDER BY job

-- VQA UF1 and UAR per (scope, task) from labels read out of answers.
-- Input: vqa_labels_in(scope, task, gt, pred); task is 'coarse' or 'fine', pred NULL when the
-- answer named no class. Rows without a GT label are left out. Classes = those present in GT for
-- the (scope, task); a predicted class absent from GT adds no class of its own.
-- F1_c = 2 tp / (2 tp + fp + fn) (= 2PR / (P + R)), recall_c = tp / (tp + fn); 0 for zero denominators.
WITH
labels AS (SELECT scope, task, gt, pred FROM vqa_labels_in WHERE gt IS NOT NULL),
classes AS (SELECT DISTINCT scope, task, gt AS c FROM labels),
per_class AS (
    SELECT k.scope, k.task, k.c,
           count(*) FILTER (WHERE l.gt = k.c AND l.pred = k.c) AS tp,
           count(*) FILTER (WHERE l.gt <> k.c AND l.pred = k.c) AS fp,
           count(*) FILTER (WHERE l.gt = k.c AND l.pred IS DISTINCT FROM k.c) AS fn
    FROM classes AS k JOIN labels AS l ON l.scope = k.scope AND l.task = k.task
    GROUP BY k.scope, k.task, k.c
)
SELECT scope, task,
       avg(CASE WHEN 2 * tp + fp + fn > 0 THEN 2.0 * tp / (2 * tp + fp + fn) ELSE 0.0 END) AS uf1,
       avg(CASE WHEN tp + fn > 0 THEN tp::DOUBLE / (tp + fn) ELSE 0.0 END) AS uar,
       count(*) AS n_classes,
       sum(tp + fn) AS n_rows
FROM per_class
GROUP BY scope, task
ORDER BY scope, task

-- Deterministic fingerprint of a dataset's labelled content: its videos and annotated intervals.
-- Paths and source-file positions are left out, so moving or re-exporting the files changes nothing.
WITH content AS (
    SELECT 'video' AS tbl,
           CAST(to_json({'subject': subject, 'video': video, 'fps': fps, 'n_frames': n_frames, 'width': width,
                         'height': height, 'first_frame': first_frame, 'labelled': labelled}) AS VARCHAR) AS r
    FROM videos WHERE dataset = $dataset
    UNION ALL
    SELECT 'interval',
           CAST(to_json({'subject': subject, 'video': video, 'interval_id': interval_id, 'onset': onset,
                         'apex': apex, 'offset': "offset", 'kind': kind, 'emotion': emotion,
                         'emotion_fine': emotion_fine, 'aus': aus, 'side': side}) AS VARCHAR)
    FROM intervals WHERE dataset = $dataset
)
SELECT count(*) FILTER (WHERE tbl = 'video') AS n_videos,
       count(*) FILTER (WHERE tbl = 'interval') AS n_intervals,
       sha256(coalesce(string_agg(tbl || ':' || r, chr(10) ORDER BY tbl, r), '')) AS manifest_hash
FROM content

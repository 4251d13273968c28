BEGIN TRANSACTION;
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    start TEXT NOT NULL, "end" TEXT NOT NULL, raised_at TEXT NOT NULL, window_count INTEGER NOT NULL,
    negative_count INTEGER NOT NULL, share REAL NOT NULL, baseline REAL NOT NULL, statistic REAL NOT NULL,
    peak REAL NOT NULL, evidence TEXT NOT NULL, UNIQUE (rule, kind, key, start));
INSERT INTO "alerts" VALUES(1,'negative-surge','company','Acme','2026-01-03T04:30:00Z','2026-01-03T05:30:00Z','2026-12-05T19:08:37Z',5,5,1.0,0.0714,8.0623,8.8318,'["/data/feeds/wire.jsonl#s0", "/data/feeds/wire.jsonl#s1", "/data/feeds/wire.jsonl#s2", "/data/feeds/wire.jsonl#s3", "/data/feeds/wire.jsonl#s4", "/data/feeds/wire.jsonl#s5"]');
CREATE TABLE cursors (
    feed TEXT PRIMARY KEY, format TEXT NOT NULL, "offset" INTEGER NOT NULL, position INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    updated_at TEXT NOT NULL);
INSERT INTO "cursors" VALUES('/data/feeds/wire.jsonl','jsonl',1619,20,'9682ce2f9c246dbb','2026-12-05T19:08:37Z');
CREATE TABLE entities (
    item_id TEXT NOT NULL REFERENCES items(id), kind TEXT NOT NULL, key TEXT NOT NULL, ticker TEXT NOT NULL,
    method TEXT NOT NULL, field TEXT NOT NULL, text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    score REAL NOT NULL, PRIMARY KEY (item_id, kind, key, field, start, "end"));
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a0','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a4','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a8','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a12','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a16','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a20','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a24','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a28','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a32','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a36','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a40','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#a44','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#s0','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#s1','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#s2','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#s3','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#s4','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#s5','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('sha256:ee9e1ccfa8d3f1c8cc9418b9f5d5d1d5','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#old-1','company','Acme','','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#c0','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#c1','company','Acme','ACME','watchlist','title','Acme',9,13,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#c2','company','Acme','ACME','watchlist','title','Acme',7,11,1.0);
INSERT INTO "entities" VALUES('/data/feeds/wire.jsonl#c3','company','Acme','ACME','watchlist','title','Acme',0,4,1.0);
CREATE TABLE items (
    id TEXT PRIMARY KEY, content_hash TEXT NOT NULL, feed TEXT NOT NULL, position INTEGER NOT NULL,
    published TEXT, event_time TEXT NOT NULL, source TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
    url TEXT NOT NULL, ingested_at TEXT NOT NULL, evaluated INTEGER NOT NULL DEFAULT 0);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a0','sha256:a11837a50965f55cc343d45a74df91f9','/data/feeds/wire.jsonl',1,'2026-01-01T00:00:00Z','2026-01-01T00:00:00Z','','Acme opens branch 0','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a4','sha256:4e51ff8872e4509e18169115bdf94499','/data/feeds/wire.jsonl',2,'2026-01-01T04:00:00Z','2026-01-01T04:00:00Z','','Acme opens branch 4','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a8','sha256:6e7938515746deeca6cf17447fdb11c0','/data/feeds/wire.jsonl',3,'2026-01-01T08:00:00Z','2026-01-01T08:00:00Z','','Acme opens branch 8','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a12','sha256:5104c52bafa1a07aff350b505dd0c096','/data/feeds/wire.jsonl',4,'2026-01-01T12:00:00Z','2026-01-01T12:00:00Z','','Acme opens branch 12','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a16','sha256:93dbf6143d85cf4ef751bbee5af1a63f','/data/feeds/wire.jsonl',5,'2026-01-01T16:00:00Z','2026-01-01T16:00:00Z','','Acme opens branch 16','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a20','sha256:a9176b034b999184ac0c29ad3c3d00c9','/data/feeds/wire.jsonl',6,'2026-01-01T20:00:00Z','2026-01-01T20:00:00Z','','Acme opens branch 20','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a24','sha256:feeb0c7cf1aacdaacf25b4a78f5e51ad','/data/feeds/wire.jsonl',7,'2026-01-02T00:00:00Z','2026-01-02T00:00:00Z','','Acme opens branch 24','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a28','sha256:bcc1e02eb436f57d8a0f1baefd9b56d3','/data/feeds/wire.jsonl',8,'2026-01-02T04:00:00Z','2026-01-02T04:00:00Z','','Acme opens branch 28','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a32','sha256:87b9b6465161e5d9c084c684bdedee27','/data/feeds/wire.jsonl',9,'2026-01-02T08:00:00Z','2026-01-02T08:00:00Z','','Acme opens branch 32','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a36','sha256:cf7aaf8c809843a1516097d6537b373e','/data/feeds/wire.jsonl',10,'2026-01-02T12:00:00Z','2026-01-02T12:00:00Z','','Acme opens branch 36','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a40','sha256:cbc81638bdb6b7c816e3f338d662d76c','/data/feeds/wire.jsonl',11,'2026-01-02T16:00:00Z','2026-01-02T16:00:00Z','','Acme opens branch 40','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#a44','sha256:93b006d38e9e2d107ef4c711f8d46b26','/data/feeds/wire.jsonl',12,'2026-01-02T20:00:00Z','2026-01-02T20:00:00Z','','Acme opens branch 44','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#s0','sha256:6e51db11f04223a400ed323aab6f3f72','/data/feeds/wire.jsonl',13,'2026-01-03T00:30:00Z','2026-01-03T00:30:00Z','','Acme shares plunge again 0','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#s1','sha256:cf9f1c76eea2ce56758afc7231a3be10','/data/feeds/wire.jsonl',14,'2026-01-03T01:30:00Z','2026-01-03T01:30:00Z','','Acme shares plunge again 1','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#s2','sha256:98b2caa8930463ef0bb9a37fc5d8dd81','/data/feeds/wire.jsonl',15,'2026-01-03T02:30:00Z','2026-01-03T02:30:00Z','','Acme shares plunge again 2','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#s3','sha256:6cdb9d8ce6a7cbf6a77332758e670683','/data/feeds/wire.jsonl',16,'2026-01-03T03:30:00Z','2026-01-03T03:30:00Z','','Acme shares plunge again 3','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#s4','sha256:8b75712ffcdece41e12039891da103e5','/data/feeds/wire.jsonl',17,'2026-01-03T04:30:00Z','2026-01-03T04:30:00Z','','Acme shares plunge again 4','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#s5','sha256:2f9adc0f4d887b4115643559e0e608d0','/data/feeds/wire.jsonl',18,'2026-01-03T05:30:00Z','2026-01-03T05:30:00Z','','Acme shares plunge again 5','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('sha256:ee9e1ccfa8d3f1c8cc9418b9f5d5d1d5','sha256:ee9e1ccfa8d3f1c8cc9418b9f5d5d1d5','/data/feeds/wire.jsonl',19,'2026-01-03T07:00:00Z','2026-01-03T07:00:00Z','','Acme item without an id','','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#old-1','sha256:1c977df64e9a6f38f1a9629dbba53528','/data/feeds/wire.jsonl',99,'0999-01-01T00:00:00Z','0999-01-01T00:00:00Z','','Acme shares plunge in 999','','','2026-12-05T19:08:37Z',0);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#c0','sha256:00000000000000000000000000000000','/data/feeds/wire.jsonl',21,'2026-01-03T06:00:00Z','2026-01-03T06:00:00Z','Reuters','Acme to cut 2,000 jobs as profits collapse','Acme said on Tuesday it would cut 2,000 jobs across its European branches after profits collapsed in the third quarter, as bad loans piled up and the cost of deposits rose faster than expected.','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#c1','sha256:00000000000000000000000000000001','/data/feeds/wire.jsonl',22,'2026-01-03T06:20:00Z','2026-01-03T06:20:00Z','AP','UPDATE 1-Acme to cut 2,000 jobs as profits collapse','Acme said on Tuesday it would cut 2,000 jobs across its European branches after profits collapsed in the third quarter, as bad loans piled up and the cost of deposits rose faster than expected.','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#c2','sha256:00000000000000000000000000000002','/data/feeds/wire.jsonl',23,'2026-01-03T06:40:00Z','2026-01-03T06:40:00Z','CNBC','REFILE-Acme to cut 2,000 jobs, as profits collapse','Acme said on Tuesday it would cut 2,000 jobs across its European branches after profits collapsed in the third quarter, as bad loans piled up and the cost of deposits rose faster than expected.','','2026-12-05T19:08:37Z',1);
INSERT INTO "items" VALUES('/data/feeds/wire.jsonl#c3','sha256:00000000000000000000000000000003','/data/feeds/wire.jsonl',24,'2026-01-03T07:00:00Z','2026-01-03T07:00:00Z','Bloomberg','Acme names new chief financial officer','Acme appointed a new finance chief.','','2026-12-05T19:08:37Z',1);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "meta" VALUES('schema_version','2');
INSERT INTO "meta" VALUES('watchlist','{"companies": [{"aliases": [], "name": "Acme", "ticker": "ACME"}], "topics": {"bankruptcy": ["bankrupt*", "insolven*", "chapter 11", "default*", "liquidat*"], "downgrade": ["downgrad*", "cuts to sell", "cut to sell", "price target cut", "outlook cut", "pulls outlook"], "earnings": ["earnings", "quarterly results", "profit warning", "guidance", "revenue miss*", "misses estimates"], "fraud": ["fraud*", "accounting scandal", "embezzl*", "money laundering", "whistleblower"], "layoffs": ["layoff*", "lay off*", "job cuts", "cut jobs", "cuts jobs", "cutting jobs", "redundanc*"], "litigation": ["lawsuit*", "sued", "sues", "class action", "litigation", "settlement"], "mergers": ["merger*", "acquisition*", "acquire*", "takeover*", "buyout*"], "regulation": ["regulator*", "fined", "fine", "penalt*", "probe", "investigation", "sanction*", "sec charges"]}}');
INSERT INTO "meta" VALUES('rules','[{"baseline": "7d", "cooldown": null, "kinds": ["company", "topic"], "method": "zscore", "metric": "share", "min_count": 5, "min_volume": 5, "name": "negative-surge", "scope": "watchlist", "threshold": 3.0, "window": "6h"}]');
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL REFERENCES alerts(id), channel TEXT NOT NULL,
    target TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, feed TEXT NOT NULL, position INTEGER NOT NULL, reason TEXT NOT NULL,
    raw TEXT NOT NULL, seen_at TEXT NOT NULL);
INSERT INTO "rejects" VALUES(1,'-',2,'invalid JSON (Expecting value, column 1)','x','2026-12-05T19:08:37Z');
INSERT INTO "rejects" VALUES(2,'/data/feeds/wire.jsonl',20,'invalid JSON (Expecting value, column 1)','not json','2026-12-05T19:08:37Z');
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT, engine TEXT NOT NULL,
    feeds TEXT NOT NULL, status TEXT NOT NULL, counts TEXT NOT NULL DEFAULT '{}', pid INTEGER, host TEXT, proc_start TEXT);
INSERT INTO "runs" VALUES(1,'2026-12-05T19:08:37Z','2026-12-05T19:08:37Z','local','["/data/feeds/wire.jsonl"]','finished','{"read": 20, "scored": 19, "duplicates": 0, "skipped": 1, "alerts": 1, "webhook_sent": 0, "webhook_failed": 0}',NULL,NULL,NULL);
INSERT INTO "runs" VALUES(2,'2026-12-05T19:08:37Z',NULL,'local','["/data/feeds/wire.jsonl"]','running','{}',NULL,NULL,NULL);
CREATE TABLE scores (
    item_id TEXT PRIMARY KEY REFERENCES items(id),
    label TEXT NOT NULL, score REAL NOT NULL, p_negative REAL NOT NULL, p_neutral REAL NOT NULL, p_positive REAL NOT NULL,
    headline_label TEXT NOT NULL, headline_score REAL NOT NULL,
    headline_negative REAL NOT NULL, headline_neutral REAL NOT NULL, headline_positive REAL NOT NULL,
    body_label TEXT, body_score REAL, body_negative REAL, body_neutral REAL, body_positive REAL,
    body_sentences INTEGER NOT NULL);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a0','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a4','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a8','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a12','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a16','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a20','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a24','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a28','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a32','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a36','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a40','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#a44','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#s0','negative',-0.9,0.9,0.1,0.0,'negative',-0.9,0.9,0.1,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#s1','negative',-0.9,0.9,0.1,0.0,'negative',-0.9,0.9,0.1,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#s2','negative',-0.9,0.9,0.1,0.0,'negative',-0.9,0.9,0.1,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#s3','negative',-0.9,0.9,0.1,0.0,'negative',-0.9,0.9,0.1,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#s4','negative',-0.9,0.9,0.1,0.0,'negative',-0.9,0.9,0.1,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#s5','negative',-0.9,0.9,0.1,0.0,'negative',-0.9,0.9,0.1,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('sha256:ee9e1ccfa8d3f1c8cc9418b9f5d5d1d5','neutral',0.2,0.0,0.8,0.2,'neutral',0.2,0.0,0.8,0.2,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#old-1','negative',-1.0,1.0,0.0,0.0,'negative',-1.0,1.0,0.0,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#c0','negative',-0.9,0.9,0.1,0.0,'negative',-0.9,0.9,0.1,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#c1','negative',-0.9,0.9,0.1,0.0,'negative',-0.9,0.9,0.1,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#c2','negative',-0.9,0.9,0.1,0.0,'negative',-0.9,0.9,0.1,0.0,NULL,NULL,NULL,NULL,NULL,0);
INSERT INTO "scores" VALUES('/data/feeds/wire.jsonl#c3','neutral',0.0,0.1,0.8,0.1,'neutral',0.0,0.1,0.8,0.1,NULL,NULL,NULL,NULL,NULL,0);
CREATE INDEX items_time ON items(event_time);
CREATE INDEX items_pending ON items(evaluated) WHERE evaluated = 0;
CREATE INDEX entities_key ON entities(kind, key);
CREATE INDEX rejects_feed ON rejects(feed, position);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('runs',2);
INSERT INTO "sqlite_sequence" VALUES('alerts',1);
INSERT INTO "sqlite_sequence" VALUES('rejects',2);
COMMIT;

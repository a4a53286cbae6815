/**
 * The dashboard's stylesheet, served as /dashboard/assets/dashboard.css. Kept in a module rather
 * than a .css file so that the compiled cloud (dist/) carries it without a copy step.
 */
export const DASHBOARD_CSS = `
:root { --fg: #1d2329; --muted: #5f6b76; --line: #d8dee4; --bg: #f6f8fa; --ok: #2e7d32; --warn: #b26a00; --bad: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 1.25rem; padding: .6rem 1.25rem; background: #1d2329; color: #fff; }
header .brand { font-weight: 600; }
header nav a { color: #cfd8e0; text-decoration: none; margin-right: 1rem; }
header nav a[aria-current="page"] { color: #fff; border-bottom: 2px solid #fff; }
header .who { margin-left: auto; display: flex; gap: .6rem; align-items: center; color: #cfd8e0; }
header .who button { background: none; border: 1px solid #5f6b76; color: #fff; border-radius: 4px; padding: .15rem .6rem; cursor: pointer; }
main { padding: 1rem 1.25rem 3rem; max-width: 1200px; }
h1 { font-size: 1.3rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: .95rem; margin: 1rem 0 .3rem; color: var(--muted); }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; margin-bottom: 1rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .85rem; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; }
.pill { display: inline-block; padding: 0 .45rem; border-radius: 9px; font-size: .8rem; font-weight: 600; border: 1px solid currentColor; }
.online { color: var(--ok); } .stale { color: var(--warn); } .offline, .never { color: var(--muted); } .revoked { color: var(--bad); }
.bad { color: var(--bad); } .muted { color: var(--muted); }
.counts { display: flex; gap: 1.5rem; flex-wrap: wrap; }
.counts div { font-size: 1.6rem; font-weight: 600; } .counts span { display: block; font-size: .8rem; color: var(--muted); font-weight: 400; }
svg.chart { width: 100%; height: auto; background: #fff; }
form.inline { display: inline; }
input[type=text], input[type=password], input[type=search], select, textarea { font: inherit; padding: .3rem .45rem; border: 1px solid var(--line); border-radius: 4px; }
textarea { width: 100%; min-height: 3.2rem; }
button { font: inherit; padding: .3rem .8rem; border-radius: 4px; border: 1px solid #1d2329; background: #1d2329; color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: #1d2329; }
button.danger { background: var(--bad); border-color: var(--bad); }
.desk-item { background: #fff; border: 1px solid var(--line); border-left: 4px solid var(--bad); border-radius: 4px; padding: .6rem .8rem; margin-bottom: .8rem; }
.desk-item .actions { display: flex; gap: .6rem; flex-wrap: wrap; align-items: flex-start; margin-top: .5rem; }
.desk-item .actions form.resolve { flex: 1 1 24rem; }
.flash { padding: .5rem .8rem; border-radius: 4px; background: #e8f5e9; border: 1px solid #a5d6a7; margin-bottom: 1rem; }
.flash.bad { background: #ffebee; border-color: #ef9a9a; }
ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 2px solid var(--line); }
ol.timeline li { position: relative; padding: .25rem 0 .45rem 1rem; }
ol.timeline li::before { content: ""; position: absolute; left: -6px; top: .6rem; width: 10px; height: 10px; border-radius: 50%; background: #90a4ae; }
ol.timeline li.operator::before { background: #1565c0; } ol.timeline li.refund::before { background: #00838f; } ol.timeline li.finding::before { background: var(--bad); }
ol.timeline .at { color: var(--muted); font-size: .85rem; margin-right: .5rem; }
.login { max-width: 22rem; margin: 6rem auto; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1.2rem 1.4rem; }
.login label { display: block; margin: .6rem 0 .2rem; } .login input { width: 100%; } .login button { margin-top: 1rem; width: 100%; }
.qr svg { width: 260px; height: 260px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; } dl.facts dt { color: var(--muted); }
`;

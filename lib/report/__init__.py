"""Shareable reports: one self-contained HTML file (plotly inlined, no server, no network).

html: the generic part (sections of paragraphs, tables, name/value facts and plotly charts -> one HTML
string); figures: a run's figures as people read them (shared with the Benchmark page); bench: a
benchmark run or a comparison -> a report, and `write_bench_report(store, run_ids, path)` for the CLI.
"""

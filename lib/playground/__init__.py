"""The Playground's logic, without Streamlit: what a page shows for an app, and how a run is kept.

    app_profile  what to show for an app, from /info and /parameters (mode, form, uploads, suggestions)
    form         the app's input form: fields, validation and coercion with readable messages
    transcript   turns of a conversation (or runs of a text generator / workflow) with timing and usage
    recorder     typed stream events -> a Turn (answer, thoughts, nodes, citations, stats)
    live         a run streaming in a worker thread, so a Streamlit rerun never cuts or resends it
    uploads      files sent the Dify way: upload first, then reference by id
    conversations  the user's conversation list and a conversation's history, with Dify's pagination
    compare      one prompt to two targets (or two input variants) at the same time
    batch        a CSV/JSONL of inputs run with bounded concurrency into a results table
    export       a transcript as Markdown or JSON (never the key)

ui/playground/ lays these out (pages/playground.py dispatches to it); tests/test_playground_lib.py drives them
against the simulator over HTTP.
"""

"""The Playground page's widgets (ui/ mirrors lib/: the logic they draw is in lib/playground/).

page.py lays the page out; state.py holds its session state; app_profile, form, turns, chat, runs,
sidebar, compare, batch, export and targets draw one part each.
"""

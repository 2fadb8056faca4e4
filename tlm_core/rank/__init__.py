"""The ranker: a learned cost model that orders generated candidates before any is measured.

`features` turns a program (its schedule, its decisions, the hardware) into a fixed-width vector;
`ranker` trains an XGBoost ranking model on the measured demonstration records, saves and loads it
(data/ranker/), and scores candidates. The method `tlm-ranked` generates many candidates, scores
them, and measures only the best-scored few.
"""

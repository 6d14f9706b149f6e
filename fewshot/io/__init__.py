"""Files in and out: reading the users' CSV files (:mod:`~fewshot.io.tables`) and the one labelled-output
format (:mod:`~fewshot.io.output`)."""

"""Stage 3, explore: an exploratory data analysis report (HTML) built with Evidently."""

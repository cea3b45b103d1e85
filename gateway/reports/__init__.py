"""Reports for heads of unit (issue 17): figures from the statistics rows, charts as inline
SVG, one self-contained HTML page, CSV and JSON."""

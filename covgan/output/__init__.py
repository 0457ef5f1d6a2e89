"""What people look at: stamped grids and strips, GIFs, plots, report.html, and the files an
explanation leaves."""

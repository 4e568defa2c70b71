"""Dataset: many images at once (readers for folders, CSVs, ZIPs and samples), the batch engine (local and Ray) and the shortcut finder."""

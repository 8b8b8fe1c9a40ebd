# An empty directory: no manifest is no error. Git cannot hold an empty directory, so
# this file keeps the case in the repository; run.sh removes it before check runs.
:

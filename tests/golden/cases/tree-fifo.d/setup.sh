# A fifo named like a manifest: reading it would block the scan forever, so check
# warns and skips it (git cannot hold a fifo). Nothing ever writes to it: if check
# opened it, the golden run would hang instead of passing.
mkfifo pipe.yaml
# a fifo not named like a manifest is not even looked at
mkfifo pipe.log

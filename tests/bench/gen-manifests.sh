#!/usr/bin/env bash
# gen-manifests.sh DIR COUNT [DOCS_PER_FILE] [PREFIX]
#
# Writes COUNT valid notebook manifests under DIR for the benchmarks: DOCS_PER_FILE
# documents per file (default 1), 100 files per team-NNN/ subdirectory (a GitOps tree has
# directories, and the scanner's walk is part of what `check` costs). The documents vary
# the way real ones do (evs and obs, CPU and GPU, annotations, envelope keys), so the
# benchmark exercises every validation path rather than one cached shape. Names are
# PREFIX-NNNNNN (default "bench"), unique across the tree.
#
# One awk process writes everything: a shell loop would make generating 10k manifests
# cost more than checking them.
set -euo pipefail

dir=${1:?usage: gen-manifests.sh DIR COUNT [DOCS_PER_FILE] [PREFIX]}
count=${2:?usage: gen-manifests.sh DIR COUNT [DOCS_PER_FILE] [PREFIX]}
per_file=${3:-1}
prefix=${4:-bench}

mkdir -p "$dir"
n_files=$(((count + per_file - 1) / per_file))
# The subdirectories first: awk cannot create them.
for ((t = 0; t * 100 < n_files; t++)); do
        mkdir -p "$dir/$(printf 'team-%03d' "$t")"
done

awk -v dir="$dir" -v count="$count" -v per_file="$per_file" -v prefix="$prefix" '
function doc(i,    v, name, team) {
        name = sprintf("%s-%06d", prefix, i)
        team = int(i / 100)
        v = i % 4
        if (v == 0)
                return "name: " name "\nprofile_id: Python3\nflavor: modelarts.vm.cpu.2u\n" \
                       "spec:\n  storage:\n    type: evs\n"
        if (v == 1)
                return "apiVersion: notebookd/v1\nkind: Notebook\nname: " name "\n" \
                       "profile_id: Python3\ndescription: benchmark notebook " i " for team " team "\n" \
                       "flavor: modelarts.vm.cpu.8u\nspec:\n  storage:\n    type: evs\n" \
                       "    location:\n      volume_size: " (5 + i % 100) "\n" \
                       "workspace:\n  id: \"0\"\n"
        if (v == 2)
                return "name: " name "\nprofile_id: Python3-gpu\nflavor: modelarts.vm.gpu.p100\n" \
                       "description: \"training, team " team "\"\n" \
                       "spec:\n  storage:\n    type: obs\n    location:\n" \
                       "      path: bench-bucket/team-" team "/" name "/\n" \
                       "  annotations:\n    owner: team-" team "\n    cost-center: \"" (1000 + team) "\"\n"
        return "# a commented manifest, as people write them\n" \
               "name: " name "   # the instance name\n" \
               "profile_id: Python2\nflavor: modelarts.vm.cpu.2u\n" \
               "spec: {storage: {type: obs, location: {path: \"bench-bucket/shared/\"}}}\n"
}
BEGIN {
        i = 0
        for (f = 0; i < count; f++) {
                path = sprintf("%s/team-%03d/nb-%06d.yaml", dir, int(f / 100), f)
                for (d = 0; d < per_file && i < count; d++) {
                        if (d > 0)
                                printf "---\n" > path
                        printf "%s", doc(i) > path
                        i++
                }
                close(path)
        }
}'

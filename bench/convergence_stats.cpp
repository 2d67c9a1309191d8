#include "bench/convergence_stats.h"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace hpt::bench {

Speedup speedup_of(const std::vector<Point>& points, const std::string& mode) {
    Speedup s;
    for (const Point& p : points)
        if (p.mode == "scratch" && (p.probe > s.scratch_best || (p.probe == s.scratch_best && p.steps < s.scratch_steps)))
            s.scratch_best = p.probe, s.scratch_steps = p.steps;  // a tie: the fewest steps
    int64_t smallest = -1;
    for (const Point& p : points) {
        if (p.mode != mode) continue;
        s.mode_best = std::max(s.mode_best, p.probe);
        if (smallest < 0 || p.steps < smallest) smallest = p.steps;
        if (s.scratch_best >= 0 && p.probe >= s.scratch_best && (s.need < 0 || p.steps < s.need))
            s.need = p.steps, s.margin = p.probe - s.scratch_best;
    }
    s.capped = s.need >= 0 && s.need == smallest;
    return s;
}

std::vector<Point> mean_over_seeds(const std::vector<Point>& points, std::vector<Point>* sd) {
    std::vector<Point> mean;
    for (const Point& p : points) {
        if (std::any_of(mean.begin(), mean.end(), [&](const Point& m) { return m.mode == p.mode && m.steps == p.steps; }))
            continue;
        std::vector<Point> same;
        std::copy_if(points.begin(), points.end(), std::back_inserter(same),
                     [&](const Point& q) { return q.mode == p.mode && q.steps == p.steps; });
        const double n = double(same.size());
        const auto stats = [&](double Point::*f, double& avg, double& dev) {
            double sum = 0, sq = 0;
            bool missing = false;
            for (const Point& q : same) sum += q.*f, missing |= q.*f < 0;
            avg = sum / n;
            for (const Point& q : same) sq += (q.*f - avg) * (q.*f - avg);
            dev = same.size() > 1 ? std::sqrt(sq / (n - 1)) : 0;
            if (missing) avg = -1;
        };
        Point m{p.mode, p.steps, 0, 0, 0, 0}, d = m;
        stats(&Point::probe, m.probe, d.probe);
        stats(&Point::knn, m.knn, d.knn);
        stats(&Point::seconds, m.seconds, d.seconds);
        mean.push_back(m);
        if (sd) sd->push_back(d);
    }
    return mean;
}

}  // namespace hpt::bench

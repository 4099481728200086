#pragma once
// Which classes the 3D view draws: all of them, one shot group (core's groups,
// from the thresholds the analysis used), the k classes with the most
// training samples, or a chosen list. The view never computes a metric: the
// groups and counts come from the analysis (per_class.group, train_count).
// ClassFilterBar holds the controls: "Show: [all classes v] [k] [Classes...]".

#include <QWidget>

#include <set>
#include <vector>

#include "ltlab/analysis.h"
#include "ltlab/run_file.h"

class QComboBox;
class QListWidget;
class QSpinBox;
class QToolButton;

namespace ltlab::ui {

struct ClassFilter {
    enum class Kind { All, Many, Medium, Few, TopK, Chosen };
    Kind kind = Kind::All;
    int k = 10;           // TopK
    std::set<int> chosen; // Chosen

    // The classes of `present` that pass, in present's order.
    std::vector<int> apply(const Analysis& analysis, const std::vector<int>& present) const;
    // What is shown, for the caption: "12 of 100 classes: few-shot (< 20 training samples)".
    QString describe(const Analysis& analysis, std::size_t shown, std::size_t total) const;
    bool operator==(const ClassFilter& o) const { return kind == o.kind && k == o.k && chosen == o.chosen; }
};

class ClassFilterBar : public QWidget {
    Q_OBJECT
public:
    explicit ClassFilterBar(QWidget* parent = nullptr);
    ClassFilter filter() const { return filter_; }
    void setFilter(const ClassFilter& filter); // emits changed when it differs
    // The classes to offer in the list (names and training counts, largest first).
    void setClasses(const ClassInfo& classes);
    // The classes drawn now: the list shows them ticked.
    void setShown(const std::vector<int>& shown);
    QListWidget* classList() const { return list_; } // ticking an item chooses it
    QComboBox* kindBox() const { return kind_; }

signals:
    void changed();

private:
    void syncControls();
    void syncList();

    ClassFilter filter_;
    std::vector<int> shown_;
    QComboBox* kind_;
    QSpinBox* k_;
    QToolButton* choose_;
    QListWidget* list_;
};

} // namespace ltlab::ui

#include "help.h"

#include <QCoreApplication>
#include <QDialog>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <QtGlobal>

#include <H5public.h>
#include <vtkVersion.h>

#include <Eigen/Core>

#include <qcustomplot.h>

namespace ltlab::ui {

namespace {

struct Guide {
    const char* stem;
    const char* title;
    const char* shows;
    const char* read;
    const char* paper;
};

// One entry per tab, in tab order.
const Guide kGuides[] = {
    {"report", "Report",
     "Every number of the analysis engine for the selected snapshot and split: accuracy (balanced, many / medium / "
     "few), NC1-NC4, FDR with tr S_W and tr S_B, the cone statistics, the implicit logit-adjustment tau.",
     "A train split smaller than the training set is a sample (ltlab train stores at most 500 per class during a "
     "stage; the stage-end snapshots hold all): the report says so. Definitions: docs/analysis.md.",
     "The tables of both papers (accuracy by shot group; NC and FDR values)."},
    {"geometry", "Geometry (3D)",
     "The class means (spheres, sized by training count) and the classifier rows (arrows) in a 3D projection, against "
     "the vertices of a simplex ETF.",
     "Neural collapse puts the means on an ETF and the classifier rows along them; in a long-tailed run the tail "
     "classes' means and rows shrink and crowd together (minority collapse). Click a sphere for its numbers. "
     "Labels name the picked class and the 3 largest and 3 smallest shown classes (or all that fit); Show draws one "
     "shot group, the top k by training count or ticked classes, and the caption says how many; the corner triad "
     "names the axes (PC1-PC3, or w(class) for classifier rows).",
     "The neural-collapse pictures (class means against the ETF)."},
    {"cone", "Cone effect",
     "Histograms of the pairwise cosine similarity of the features, same-class and different-class pairs.",
     "All cosines near 1: the features sit in a narrow cone. Weight decay pushes the different-class histogram "
     "towards lower cosines, which raises FDR.",
     "ICLR 2024: the cone-effect histograms and mean cosine tables."},
    {"weight_norms", "Weight norms",
     "Per-class norms ||w_c|| of the classifier (and the biases), classes ordered head to tail, with the training "
     "counts; the end of stage 1 (or another snapshot) overlaid.",
     "Falling norms from head to tail favour the head. Stage 2 of weight balancing flattens them: the implicit logit "
     "adjustment.",
     "CVPR 2022 and ICLR 2024: per-class weight-norm plots."},
    {"logit_adjustment", "Logit adjustment",
     "Balanced accuracy against the adjustment strength tau (additive z - tau log pi, multiplicative z / pi^tau), the "
     "per-class accuracies at the slider's tau, and the implicit-tau fit log||w_c|| against -log pi_c.",
     "A positive implicit tau means the classifier already favours the tail, as an explicit adjustment of that tau "
     "would; negative: the head is favoured.",
     "ICLR 2024: the logit-adjustment analysis of stage 2 (Theorem on WD + CB)."},
    {"per_class", "Per-class accuracy",
     "Accuracy of each class with its training count, the shot groups and the confusion matrix (full or by group).",
     "Long-tailed failure shows as falling bars towards the tail; a good method lifts the tail without sinking the "
     "head.",
     "Per-class accuracy bars and the many / medium / few confusion."},
    {"training_curves", "Training curves",
     "The run's /history: one panel per metric (loss, accuracies, NC, FDR, cone, tau, learning rate), the stage-2 "
     "boundary and the shown snapshot's epoch; other open runs overlaid.",
     "Compare a ce and a ce-wd run: weight decay raises FDR and lowers NC1 over the epochs.",
     "Per-epoch accuracy and FDR curves."},
    {"figure_set", "Paper figures",
     "The papers' figure set: weight-norm evolution (epochs x classes), class x class heatmaps (feature cosine, "
     "feature-weight cosine, ||h|| ||w||, weight cosine), feature norms, the composition of the loss with the "
     "weight-decay penalty, accuracy against a baseline run, the grouped confusion.",
     "Each figure exports as vector PDF/SVG at one column or the page (ltlab figures --size column|page).",
     "The HN410 code's figures (utils/plot_funcs.py), one by one."},
    {"stage2_sandbox", "Stage-2 sandbox",
     "Weight balancing's stage 2 retrained on the snapshot's frozen train features, live: loss (CE, the ICLR "
     "class-balanced CE, the CVPR class-balanced BCE), weight decay, MaxNorm, epochs, learning rate, start.",
     "Move the weight decay and watch the implicit tau and the few-shot accuracy: stage 2 is an implicit logit "
     "adjustment. The table keeps the settings tried; Save writes the result as a snapshot.",
     "ICLR 2024: the analysis of stage 2 as logit adjustment."},
    {"cone_lab", "Cone lab",
     "A seeded random network on noise: each layer ReLU(gamma norm(XW) + beta); per layer the cosine histogram, its "
     "mean and std, and FDR for labelled (spike-and-slab) inputs.",
     "The cone appears without any training and deepens layer after layer; normalisation and the BN scale gamma "
     "shape it. The presets are the paper's multi-layer study.",
     "ICLR 2024: the one- and multi-layer cone-effect studies."},
    {"layers", "Layers",
     "Statistics after every block of the network (cosine, FDR and ReLU-FDR, traces, sparsity, BN gamma and beta) "
     "for the open runs, on test images or on N(0,1) noise, trained or at initialisation; Compute runs ltlab layers.",
     "The cone on noise at initialisation is the architecture's; weight decay changes FDR through the layers.",
     "ICLR 2024: the per-layer cosine and FDR figures (models_cosine_similarity, models_fdr)."},
};

} // namespace

QString guideAnchor(const QString& file_stem) {
    // The figure set's stem follows its chosen figure; its guide is one section.
    for (const Guide& g : kGuides)
        if (file_stem == g.stem) return file_stem;
    return QStringLiteral("figure_set");
}

QStringList guidedViews() {
    QStringList stems;
    for (const Guide& g : kGuides) stems << g.stem;
    return stems;
}

QString viewGuideHtml() {
    QString html = "<h2>The views</h2><p>Each tab shows one side of the selected snapshot (Runs tree, timeline). "
                   "Every view exports its figure and data (File &gt; Export current view, Ctrl+E).</p>"
                   "<h3><a name=\"runs\"></a>Runs, the epoch timeline and the session</h3>"
                   "<p><b>Runs tree:</b> the open runs in the order they were given, each with its snapshots. A click on "
                   "a run shows its last snapshot; a file opened again is selected, not opened twice; right-click "
                   "&gt; Close or Ctrl+W closes the selected run. The filter field above the tree (Ctrl+F) keeps the "
                   "snapshots whose name contains its text (<i>stage2</i>, <i>_la</i>, <i>epoch_01</i>) and the "
                   "runs that have one, for runs with hundreds of snapshots.</p>"
                   "<p><b>Epoch timeline:</b> the slider steps through the selected run's snapshots; Play (Space) "
                   "moves through them at the chosen speed (1x: a snapshot every 0.8 s, waiting for each analysis), "
                   "and at the last one starts again (Loop ticked) or stops there. With the Runs filter in use it "
                   "plays only the snapshots the filter shows.</p>"
                   "<p><b>Session:</b> on quit the window keeps the open runs, the selected snapshot, the tab, the "
                   "weight norms' overlay, the logit-adjustment mode and tau and the 3D options; <tt>ltlab</tt> "
                   "without files reopens them (a run file that is gone is skipped and named in the status bar). "
                   "Files given on the command line open instead of the session; <tt>ltlab --no-session</tt> "
                   "starts empty.</p>"
                   "<p><b>Training dock, the open run:</b> <i>Logit adjustment (la)</i> adjusts the selected run's "
                   "last snapshot that is not itself adjusted, with the dock's tau and mode (auto: best on val), "
                   "into RUN-la.h5 beside it (<tt>ltlab train --recipe la --from RUN</tt>); <i>Resume / extend</i> "
                   "continues the run in its file to the epochs set (<tt>ltlab train --resume RUN --epochs N</tt>; "
                   "more than the run had extends it, the cosine schedule following the new total).</p>";
    for (const Guide& g : kGuides)
        html += QStringLiteral("<h3><a name=\"%1\"></a>%2</h3><p><b>Shows:</b> %3</p><p><b>How to read it:</b> %4</p>"
                               "<p><b>In the papers:</b> %5</p>")
                    .arg(g.stem, QObject::tr(g.title), QObject::tr(g.shows), QObject::tr(g.read), QObject::tr(g.paper));
    return html;
}

QString shortcutsHtml() {
    const char* rows[][2] = {{"Ctrl+O", "open run files"},
                             {"Ctrl+I", "import checkpoints (PyTorch, TorchScript, safetensors)"},
                             {"Ctrl+E", "export the current view (PDF, SVG, PNG and its data as CSV)"},
                             {"Ctrl+W", "close the selected run"},
                             {"Ctrl+F", "filter the Runs tree's snapshots"},
                             {"F5", "presentation mode (full screen, large type; F5 again to leave)"},
                             {"F1", "the guide to the current view"},
                             {"Space", "play through the snapshots (speed and loop beside the timeline); a focused button, "
                                       "check box, list or text field keeps Space for itself"},
                             {"Esc", "cancel the running analysis"},
                             {"Ctrl+Q", "quit"}};
    QString html = "<h2>Keyboard shortcuts</h2><table cellpadding=4>";
    for (const auto& r : rows) html += QStringLiteral("<tr><td><b>%1</b></td><td>%2</td></tr>").arg(r[0], QObject::tr(r[1]));
    return html + "</table>";
}

QString aboutHtml() {
    return QStringLiteral(
               "<h2>ltlab %1</h2><p>A workbench for long-tailed recognition: neural collapse, the cone effect, "
               "Fisher's discriminant ratio and weight balancing (Hasegawa &amp; Sato, ICLR 2024; Alshammari et al., "
               "CVPR 2022), for run files and the checkpoints researchers already have.</p>"
               "<table cellpadding=2><tr><td>Qt</td><td>%2</td></tr><tr><td>VTK</td><td>%3</td></tr>"
               "<tr><td>HDF5</td><td>%4.%5.%6</td></tr><tr><td>Eigen</td><td>%7.%8.%9</td></tr>"
               "<tr><td>QCustomPlot</td><td>%10</td></tr><tr><td>libtorch</td><td>loaded only to train, import or "
               "run ltlab layers (ltlab train --help)</td></tr></table>")
        .arg(QCoreApplication::applicationVersion(), qVersion(), vtkVersion::GetVTKVersion())
        .arg(H5_VERS_MAJOR)
        .arg(H5_VERS_MINOR)
        .arg(H5_VERS_RELEASE)
        .arg(EIGEN_WORLD_VERSION)
        .arg(EIGEN_MAJOR_VERSION)
        .arg(EIGEN_MINOR_VERSION)
        .arg(QCUSTOMPLOT_VERSION_STR);
}

void showHelpWindow(QWidget* parent, const QString& title, const QString& html, const QString& anchor) {
    QDialog* dialog = nullptr;
    for (QDialog* d : parent->findChildren<QDialog*>(QString(), Qt::FindDirectChildrenOnly))
        if (d->objectName() == "help:" + title) dialog = d;
    QTextBrowser* browser = nullptr;
    if (!dialog) {
        dialog = new QDialog(parent);
        dialog->setObjectName("help:" + title);
        dialog->setWindowTitle(title);
        dialog->resize(620, 560);
        browser = new QTextBrowser(dialog);
        browser->setOpenExternalLinks(true);
        (new QVBoxLayout(dialog))->addWidget(browser);
    } else {
        browser = dialog->findChild<QTextBrowser*>();
    }
    browser->setHtml(html);
    if (!anchor.isEmpty()) browser->scrollToAnchor(anchor);
    dialog->show(); // non-modal: the window stays usable beside it
    dialog->raise();
}

} // namespace ltlab::ui
